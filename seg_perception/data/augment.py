"""Training augmentation applied identically to an image and its label maps (numpy / OpenCV).

Random scale, crop to a fixed size (padding with image 0, label void, instance 0; with
some probability the window is placed over a class drawn uniformly from those in the frame,
so rare classes are seen as often as common ones), horizontal flip and colour jitter, all
drawn from a caller-supplied ``np.random.Generator`` so a run is reproducible. Label maps are
resampled by exact nearest neighbour on pixel centres (the same grid as the image's bilinear
resize), so labels stay on their pixels. Compute the Panoptic-DeepLab targets after this, on
the crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..labels import VOID_ID


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings.

    Attributes:
        crop_height, crop_width: Output size in pixels.
        min_scale, max_scale: Uniform random resize factor range.
        flip_probability: Chance of a horizontal flip.
        brightness, contrast, saturation: Factors drawn uniformly from [1 - v, 1 + v].
        hue: Hue shift drawn uniformly from [-hue, hue], as a fraction of the colour circle.
        void_id: Label value written into padding.
        class_balanced_crop: Chance that the crop window is placed to contain a pixel of a
            class drawn uniformly from the classes present in the frame (void excluded),
            instead of anywhere (class-uniform sampling: thin and rare classes such as
            bicycles and traffic lights get as many crops as roads).
    """

    crop_height: int
    crop_width: int
    min_scale: float = 0.5
    max_scale: float = 2.0
    flip_probability: float = 0.5
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 0.05
    void_id: int = VOID_ID
    class_balanced_crop: float = 0.0

    def __post_init__(self) -> None:
        if self.crop_height <= 0 or self.crop_width <= 0:
            raise ValueError(
                f'crop size {self.crop_width}x{self.crop_height} must be positive')
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f'scale range [{self.min_scale}, {self.max_scale}] must be positive and ordered')
        if not 0 <= self.flip_probability <= 1:
            raise ValueError(f'flip_probability {self.flip_probability} is not in 0..1')
        for name in ('brightness', 'contrast', 'saturation'):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f'{name} {getattr(self, name)} must be in [0, 1)')
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f'hue {self.hue} must be in [0, 0.5]')
        if not 0 <= self.class_balanced_crop <= 1:
            raise ValueError(f'class_balanced_crop {self.class_balanced_crop} is not in 0..1')


def _check_maps(image: np.ndarray, *labels: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
    for label in labels:
        if label.shape != image.shape[:2]:
            raise ValueError(f'label map {label.shape} does not match image {image.shape[:2]}')


def resize_nearest(label: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) map resampled to (height, width) taking the source pixel under each centre."""
    src_height, src_width = label.shape[:2]
    rows = ((np.arange(height) + 0.5) * (src_height / height)).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * (src_width / width)).astype(np.intp)
    return _take_grid(label, np.minimum(rows, src_height - 1), np.minimum(cols, src_width - 1))


def _take_grid(label: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``label[rows[:, None], cols]`` as two 1-D takes (several times faster)."""
    return np.take(np.take(label, rows, axis=0), cols, axis=1)


def _nearest_indices(start: int, count: int, source: int, scaled: int) -> np.ndarray:
    """Source indices under the pixel centres ``start .. start + count - 1`` of an axis
    resampled from ``source`` to ``scaled`` pixels (as ``resize_nearest``)."""
    centres = (np.arange(start, start + count) + 0.5) * (source / scaled)
    return np.minimum(centres.astype(np.intp), source - 1)


def random_scaled_crop(image: np.ndarray, semantic: np.ndarray, instance: np.ndarray,
                       rng: np.random.Generator, config: AugmentConfig
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale by a random factor, pad (bottom / right) to the crop size, crop a window.

    The window is uniformly random, or with probability ``config.class_balanced_crop``
    placed at random among the windows that contain one random pixel of a class drawn
    uniformly from the non-void classes of the scaled frame. Only the window is resampled
    (the image bilinearly, on the grid ``cv2.resize`` uses; labels by ``resize_nearest``'s
    pixel centres), never the whole scaled frame: a 512x256 crop of a frame scaled by 1.5
    costs a ninth of the resize.

    Returns:
        (crop_height, crop_width, 3) uint8 image (0 in padding) and the two maps with
        their input dtypes (void / 0 in padding).
    """
    import cv2
    src_height, src_width = semantic.shape
    scale = rng.uniform(config.min_scale, config.max_scale)
    height = max(1, int(round(src_height * scale)))
    width = max(1, int(round(src_width * scale)))
    crop_height, crop_width = config.crop_height, config.crop_width
    top_range = (0, max(height, crop_height) - crop_height)
    left_range = (0, max(width, crop_width) - crop_width)
    if config.class_balanced_crop > 0 and rng.random() < config.class_balanced_crop:
        top_range, left_range = _windows_over_random_class(
            resize_nearest(semantic, height, width), rng, crop_height, crop_width,
            config.void_id, top_range, left_range)
    top = int(rng.integers(top_range[0], top_range[1] + 1))
    left = int(rng.integers(left_range[0], left_range[1] + 1))
    rows, cols = min(crop_height, height - top), min(crop_width, width - left)
    source_rows = _nearest_indices(top, rows, src_height, height)
    source_cols = _nearest_indices(left, cols, src_width, width)
    out_semantic = np.full((crop_height, crop_width), config.void_id, dtype=semantic.dtype)
    out_instance = np.zeros((crop_height, crop_width), dtype=instance.dtype)
    out_semantic[:rows, :cols] = _take_grid(semantic, source_rows, source_cols)
    out_instance[:rows, :cols] = _take_grid(instance, source_rows, source_cols)
    step_x, step_y = src_width / width, src_height / height
    # Output pixel (x, y) of the window samples the source at ((left + x + 0.5) * step - 0.5)
    # like cv2.resize; outside the source, edge pixels repeat as cv2.resize does.
    to_source = np.array([[step_x, 0.0, (left + 0.5) * step_x - 0.5],
                          [0.0, step_y, (top + 0.5) * step_y - 0.5]])
    out_image = np.zeros((crop_height, crop_width, 3), dtype=np.uint8)
    out_image[:rows, :cols] = cv2.warpAffine(
        image, to_source, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE)
    return out_image, out_semantic, out_instance


def _windows_over_random_class(semantic: np.ndarray, rng: np.random.Generator, height: int,
                               width: int, void_id: int, top_range: Tuple[int, int],
                               left_range: Tuple[int, int]
                               ) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Ranges of crop corners (inclusive) whose window holds one pixel of a random class."""
    counts = np.bincount(semantic.ravel(), minlength=void_id + 1)
    counts[void_id] = 0
    present = np.flatnonzero(counts)
    if present.size == 0:
        return top_range, left_range
    chosen = present[int(rng.integers(present.size))]
    pick = int(rng.integers(counts[chosen]))
    flat = np.flatnonzero(semantic.ravel() == chosen)[pick]
    row, col = divmod(int(flat), semantic.shape[1])
    tops = (max(top_range[0], row - height + 1), min(top_range[1], row))
    lefts = (max(left_range[0], col - width + 1), min(left_range[1], col))
    return tops, lefts


def random_flip(image: np.ndarray, semantic: np.ndarray, instance: np.ndarray,
                rng: np.random.Generator, probability: float = 0.5
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror all three left-right with the given probability."""
    if rng.random() < probability:
        return image[:, ::-1], semantic[:, ::-1], instance[:, ::-1]
    return image, semantic, instance


def color_jitter(image: np.ndarray, rng: np.random.Generator, brightness: float = 0.25,
                 contrast: float = 0.25, saturation: float = 0.25, hue: float = 0.05
                 ) -> np.ndarray:
    """(H, W, 3) uint8 RGB with random brightness, contrast, saturation and hue changes."""
    import cv2
    factors = rng.uniform([1 - brightness, 1 - contrast, 1 - saturation],
                          [1 + brightness, 1 + contrast, 1 + saturation])
    shift = rng.uniform(-hue, hue)
    b, c, s = (float(f) for f in factors)
    gray_weights = np.array([0.299, 0.587, 0.114], dtype=np.float64)
    # brightness (p *= b), contrast about the mean grey m and saturation about each pixel's
    # grey are all linear, so they fold into one 3x4 affine map applied in one OpenCV pass:
    # p' = c b S p + (1 - c) m, with S = s I + (1 - s) 1 w^T (S 1 = 1 since sum(w) = 1).
    mean_gray = b * float(np.dot(np.asarray(cv2.mean(image)[:3]), gray_weights))
    saturation_matrix = s * np.eye(3) + (1.0 - s) * np.outer(np.ones(3), gray_weights)
    affine = np.empty((3, 4), dtype=np.float64)
    affine[:, :3] = c * b * saturation_matrix
    affine[:, 3] = (1.0 - c) * mean_gray
    result = cv2.transform(np.ascontiguousarray(image), affine)
    if shift:
        hsv = cv2.cvtColor(result, cv2.COLOR_RGB2HSV_FULL)
        # Hue in _FULL spans 0..255 and wraps around, as uint8 addition does.
        hue = hsv[..., 0]
        np.add(hue, np.uint8(int(round(shift * 256)) % 256), out=hue)
        result = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
    return result


def augment(image: np.ndarray, semantic: np.ndarray, instance: np.ndarray,
            rng: np.random.Generator, config: AugmentConfig
            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale, crop, flip and colour-jitter one frame.

    Args:
        image: (H, W, 3) uint8 RGB.
        semantic: (H, W) integer train ids.
        instance: (H, W) integer instance ids (0 = none).
        rng: Source of every random choice; the same state gives the same output.
        config: Sizes, ranges and probabilities.

    Returns:
        (crop_height, crop_width, 3) uint8 image and the two (crop_height, crop_width) maps
        with their input dtypes, all C-contiguous.
    """
    _check_maps(image, semantic, instance)
    image, semantic, instance = random_scaled_crop(image, semantic, instance, rng, config)
    image, semantic, instance = random_flip(image, semantic, instance, rng,
                                            config.flip_probability)
    image = color_jitter(np.ascontiguousarray(image), rng, config.brightness, config.contrast,
                         config.saturation, config.hue)
    return image, np.ascontiguousarray(semantic), np.ascontiguousarray(instance)
