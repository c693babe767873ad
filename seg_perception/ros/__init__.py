"""The only rclpy importers: the node, bag replay, the demo's session and the node
benchmark's client. Each wires ROS topics, parameters and QoS to the ROS-free core.
"""
