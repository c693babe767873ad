"""ROS 2 bags without ROS: reading and writing sqlite3 / MCAP bags (``rosbags``), synthetic
drives recorded as bags, and ground-truth label images decoded from them.

Modules here may import numpy, OpenCV, rosbags and ``images``; never rclpy.
"""
