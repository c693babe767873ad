"""images/visualize.py: the instance palette, semantic / panoptic colours and the overlay."""

import numpy as np
import pytest

from seg_perception.images.visualize import (
    instance_palette,
    overlay,
    panoptic_color,
    semantic_color,
)
from seg_perception.labels import cityscapes


def test_instance_palette_is_distinct():
    palette = instance_palette().astype(int)
    assert palette.shape == (1000, 3) and (palette[0] == 0).all()
    assert len({tuple(c) for c in palette}) == 1000


def test_panoptic_colour_one_per_segment_and_overlay_blend():
    labels = cityscapes()
    rng = np.random.default_rng(0)
    classes = rng.choice([0, 11, 13], size=(40, 60))
    instance = np.where(classes == 0, 0, rng.integers(1, 30, size=(40, 60)))
    panoptic = (classes * 1000 + instance).astype(np.int32)
    colors = panoptic_color(panoptic, labels, 1000)
    assert colors.dtype == np.uint8 and colors.shape == (40, 60, 3)
    ids = np.unique(panoptic)
    seen = {}
    for segment_id in ids:
        pixels = colors[panoptic == segment_id]
        assert (pixels == pixels[0]).all()
        seen[tuple(pixels[0])] = segment_id
    assert len(seen) == len(ids)  # distinct colour per segment
    assert tuple(colors[panoptic == 0][0]) == labels.colors[0]
    image = np.full((40, 60, 3), 200, np.uint8)
    semantic_colors = semantic_color(classes.astype(np.uint8), labels)
    assert (overlay(image, semantic_colors, 0.0) == image).all()
    assert (overlay(image, semantic_colors, 1.0) == semantic_colors).all()
    half = overlay(image, semantic_colors, 0.5).astype(int)
    assert np.abs(half - (200 + semantic_colors.astype(int)) / 2).max() <= 1
    with pytest.raises(ValueError, match='alpha'):
        overlay(image, semantic_colors, 1.5)
