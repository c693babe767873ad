"""The node's ROS-free core, shared by the node and the evaluator: parameters (config), the
newest-frame store, the inference worker, the ONE outputs table and its rendering, per-camera
monitors and diagnostics.

Modules here may import ``segmenter``, ``images``, ``labels`` and ``runtime.base``; never
rclpy.
"""
