"""Image checks, resize to the network size and HWC -> CHW layout into a reused buffer.

Normalisation (mean / std) is not done here: it lives in the exported graph, so the
backend input is raw 0..255 RGB as float32 (see ``seg_perception.manifest``).
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

#: Shrinking by more than this factor (in either direction) uses area interpolation,
#: which averages all source pixels instead of aliasing like bilinear does.
AREA_INTERPOLATION_FACTOR = 2.0


def check_image(image: np.ndarray, name: str = 'image') -> None:
    """Raise ``ValueError`` unless ``image`` is a non-empty RGB uint8 (H, W, 3) array."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f'{name} must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ValueError(f'{name} must have dtype uint8 (RGB 0..255), got {image.dtype}')
    if image.ndim != 3:
        raise ValueError(
            f'{name} must have 3 dimensions (H, W, 3), got {image.ndim} with shape '
            f'{image.shape}')
    if image.shape[2] != 3:
        raise ValueError(
            f'{name} must have 3 channels (RGB), got {image.shape[2]} (shape {image.shape}); '
            'convert grey / RGBA / BGR images first (seg_perception.images.raw)')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f'{name} is empty (shape {image.shape})')


def resize_interpolation(source_hw: Tuple[int, int], target_hw: Tuple[int, int]) -> int:
    """OpenCV interpolation flag for resizing an image of ``source_hw`` to ``target_hw``."""
    shrink = max(source_hw[0] / target_hw[0], source_hw[1] / target_hw[1])
    return cv2.INTER_AREA if shrink > AREA_INTERPOLATION_FACTOR else cv2.INTER_LINEAR


class Preprocessor:
    """Resizes RGB images to the network size and lays them out as (B, 3, H, W) float32.

    The batch buffer and the uint8 resize scratch image are allocated once and reused, so
    the per-frame hot path allocates nothing. Not thread-safe: one per Segmenter.
    """

    def __init__(self, batch: int, height: int, width: int) -> None:
        if batch <= 0 or height <= 0 or width <= 0:
            raise ValueError(f'batch {batch}, height {height} and width {width} must be positive')
        self.network_hw = (height, width)
        self.buffer = np.zeros((batch, 3, height, width), dtype=np.float32)
        self._resized = np.empty((height, width, 3), dtype=np.uint8)

    @property
    def batch_size(self) -> int:
        return self.buffer.shape[0]

    def load(self, slot: int, image: np.ndarray) -> None:
        """Resize ``image`` (uint8 (H, W, 3) RGB, already checked) into batch slot ``slot``."""
        height, width = self.network_hw
        if image.shape[:2] == self.network_hw:
            resized = image
        else:
            interpolation = resize_interpolation(image.shape[:2], self.network_hw)
            resized = cv2.resize(image, (width, height), dst=self._resized,
                                 interpolation=interpolation)
        # One pass: uint8 -> float32 cast fused with the HWC -> CHW transpose.
        np.copyto(self.buffer[slot], resized.transpose(2, 0, 1))

    def clear(self, slot: int) -> None:
        """Zero an unused batch slot (padding of the last chunk of a batch)."""
        self.buffer[slot].fill(0.0)


def resize_nearest(label_map: np.ndarray, target_hw: Tuple[int, int]) -> np.ndarray:
    """Resize an (h, w) map of any dtype to ``target_hw`` by nearest neighbour.

    Uses pixel-centre sampling (``INTER_NEAREST_EXACT``), so no half-pixel shift. Returns
    the input unchanged when the size already matches.
    """
    if label_map.shape[:2] == tuple(target_hw):
        return label_map
    return cv2.resize(label_map, (int(target_hw[1]), int(target_hw[0])),
                      interpolation=cv2.INTER_NEAREST_EXACT)


def resize_labelled_frame(image: np.ndarray, semantic: np.ndarray, instance: np.ndarray,
                          height: int, width: int
                          ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame with ground truth brought to the network size, the way the node resizes
    camera frames: the image by ``resize_interpolation``'s choice, the maps by nearest.

    Args:
        image: (h, w, 3) uint8 RGB.
        semantic, instance: (h, w) label maps (any integer dtypes, kept).

    Returns:
        ``(image, semantic, instance)`` at (height, width); the inputs when already so.
    """
    if image.shape[:2] == (height, width):
        return image, semantic, instance
    resized = cv2.resize(image, (width, height),
                         interpolation=resize_interpolation(image.shape[:2], (height, width)))
    return (resized, resize_nearest(semantic, (height, width)),
            resize_nearest(instance, (height, width)))
