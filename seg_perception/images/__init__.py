"""Camera images as numpy: raw and compressed message codecs, preprocess, visualize.

Modules here may import numpy and OpenCV (cv2, lazily where import time matters); never rclpy.
"""
