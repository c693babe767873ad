"""Data: synthetic driving scenes, Cityscapes-format I/O, Panoptic-DeepLab targets."""
