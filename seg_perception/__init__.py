"""seg_perception: semantic, instance and panoptic segmentation for ROS 2 cameras.

Only ``seg_perception.ros`` imports rclpy; everything else is the ROS-free core.
"""

__version__ = '0.1.0'

__all__ = ['Segmenter', 'SegmentationResult', 'Segment', '__version__']


def __getattr__(name):
    # Lazy so that `import seg_perception.labels` stays cheap (no cv2 import).
    if name in ('Segmenter', 'SegmentationResult', 'Segment'):
        from . import segmenter
        return getattr(segmenter, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
