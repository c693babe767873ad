"""Command helpers without ROS: benchmarks, demo scoring, doctor, progress bar, node process,
RViz configs.

Modules here may import anything in the package except rclpy and ``commands``.
"""
