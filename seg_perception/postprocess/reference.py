"""Numpy reference post-processing: semantic, instance and panoptic maps from network heads.

These pure functions, and this docstring, are the specification that ``fused.FusedPostprocess``
(the same steps inside the exported ONNX / TensorRT graph) must reproduce; tests compare the
two. Only numpy. The grid of step 2 and the shared settings checks and limits live in
``grid``, the centre NMS, grouping and votes of steps 3-5 in ``grouping``; this module runs
the steps in order (``panoptic_from_heads``, ``panoptic_from_semantic``). Semantic-only
models get their instances from ``components``; ``segments`` turns panoptic maps into
segment lists.

Panoptic-DeepLab post-processing, as done here and in the graph (``s`` = grouping stride):

1. ``semantic`` = argmax of the logits over classes (ties -> lowest class index);
   ``confidence`` = largest softmax probability, computed as ``1 / sum(exp(l - max(l)))``.
2. The grouping grid: grid cell ``(i, j)`` covers network pixels
   ``[s*i, s*i + s) x [s*j, s*j + s)`` and samples the full-resolution semantic map at pixel
   ``(s*i + s//2, s*j + s//2)`` (strided slicing). H and W must be multiples of ``s``. The
   centre heatmap and offsets come at the network's ``instance_stride`` r (H/r x W/r) and
   are brought to the grid by ``heads_to_grid``: r = s as they are, r < s by strided
   sampling at ``k//2::k`` (k = s/r; for r = 1 the same pixels as the semantic map), r > s
   by bilinear upsampling by r/s (half-pixel centres, as ONNX ``Resize``). Everything up
   to step 5 runs on this (H/s, W/s) grid, which keeps the cost of the panoptic steps a
   small fraction of the network's.
3. Centre NMS on the grid: max-pool the heatmap with kernel ``2*ceil((nms_kernel//2)/s) + 1``
   (the paper's kernel radius in network pixels, rounded up to grid cells), stride 1, same
   padding (padding never wins). A centre is a cell equal to its pooled value and strictly
   above ``center_threshold``. The ``K = min(top_k, grid cells)`` highest such cells are
   taken in descending score order (ties -> lower flat index first); slots past the last
   centre are invalid and score 0.
3b. Centre votes (only when ``min_center_votes`` > 0; this project's addition): a centre
   stays valid only when ``votes * s * s >= min_center_votes``, where ``votes`` counts the
   thing cells whose offset target (step 4) lies strictly within ``center_vote_radius``
   network pixels of it: ``|t - c|^2 < (center_vote_radius / s)^2`` in grid units, computed
   as ``distance < (center_vote_radius / s)^2 - |t|^2`` with the step-4 distance. A heatmap
   peak that no pixel points at (a second peak on one large car) is dropped before it can
   split the car.
4. Grouping: cell ``(i, j)`` with offset ``(dy, dx)`` (network pixels) points at
   ``(ty, tx) = (i + dy/s, j + dx/s)`` in grid units; it joins the valid centre
   ``(cy, cx)`` nearest to that point (ties -> lowest slot). Without any valid centre it
   joins none (0). Every cell is grouped; only thing cells vote. The squared distance
   drops the term ``ty^2 + tx^2``, which is the same for every centre, so all cells times
   all slots take one matrix product of ``(ty, tx, 1)`` with ``(-2 cy, -2 cx,
   cy^2 + cx^2)``, in float32, coordinates taken from the grid's middle cell
   ``(h//2, w//2)`` (smaller magnitudes, less rounding); invalid slots get
   ``(0, 0, INVALID_CENTER_DISTANCE)``.
4b. Class-aware grouping (only when ``class_aware_grouping``; this project's addition):
   after a first grouping and vote (step 5), each centre gets a class: the semantic class
   of its own cell when that is a thing class, else its voted class; centres without a
   thing cell become invalid. Every cell is grouped again with
   ``CLASS_MISMATCH_DISTANCE`` added to a thing cell's distance to centres of another class
   than its own semantic class (stuff cells get no penalty; their grouping is unused), so
   a thing cell joins the nearest centre of its class and, when the frame has none, the
   nearest centre of any class (as in step 4). Then step 5 votes again.
   A person standing in front of a car keeps its own instance instead of joining the car's.
5. Vote: instance ``k`` (slot ``k-1``) counts the grid cells assigned to it per thing class;
   its class is the most frequent (ties -> lowest class id), its area is
   ``cells * s * s``. An instance is kept when it has at least one thing cell and
   ``area >= min_instance_area``; kept instances keep id ``k`` (so id ``k`` <->
   ``instance_score[k-1]``, ids may have gaps), dropped ones become 0 with score 0.
6. Back to network resolution by nearest (cell value repeated ``s x s``): a network pixel
   whose own semantic class is a thing gets its cell's instance id (0 if none / dropped).
   ``panoptic = class * label_divisor + instance`` where ``class`` is the instance's voted
   class on pixels with a non-zero id and the pixel's semantic class elsewhere. A stuff
   class whose grid area ``cells * s * s`` is below ``stuff_area`` becomes void
   (``void_id * label_divisor``) in ``panoptic`` only. So for every non-void pixel
   ``panoptic % label_divisor == instance``, and ``panoptic // label_divisor == semantic``
   wherever the instance is 0.

   The semantic map itself stays the argmax of step 1, as in Panoptic-DeepLab, where the
   semantic branch is evaluated on its own: relabelling a rider's bicycle pixels to the
   rider instance's voted class makes the panoptic map consistent but the semantic map
   worse (measured on the zoo models: 1.4-2 points of held-out mIoU, mostly rider,
   bicycle, motorcycle and person pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..manifest import PostprocessSettings
from .grid import (
    check_grid_size,
    CLASS_MISMATCH_DISTANCE,
    from_grid,
    grid_nms_kernel,
    heads_to_grid,
    instance_stride_of,
    INVALID_CENTER_DISTANCE,
    to_grid,
    validate_settings,
    vote_radius_in_cells,
)
from .grouping import (
    center_votes,
    find_centers,
    grouping_distances,
    nearest_centers,
    vote_instance_classes,
)


@dataclass
class PanopticOutput:
    """Post-processed maps of one image, same meanings as the graph outputs.

    Attributes:
        semantic: int32 (H, W) argmax train ids (step 1; never relabelled).
        confidence: float32 (H, W) softmax probability of the argmax class.
        instance: int32 (H, W) 0 = no instance, else 1..top_k.
        panoptic: int32 (H, W) ``class * label_divisor + instance`` (an instance's pixels carry
            its voted class, other pixels their semantic class); small stuff -> void.
        instance_score: float32 (top_k,) centre score of instance id k+1 (0 = unused).
    """

    semantic: np.ndarray
    confidence: np.ndarray
    instance: np.ndarray
    panoptic: np.ndarray
    instance_score: np.ndarray


def semantic_from_logits(logits: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Argmax class and its softmax probability (step 1).

    Args:
        logits: float (C, H, W) or (B, C, H, W).

    Returns:
        ``(semantic, confidence)``: int32 and float32, (H, W) or (B, H, W).
    """
    logits = np.asarray(logits)
    if logits.ndim not in (3, 4) or logits.shape[-3] < 1:
        raise ValueError(
            f'logits must be (C, H, W) or (B, C, H, W) with C >= 1, got shape {logits.shape}')
    logits = logits.astype(np.float32, copy=False)
    axis = logits.ndim - 3
    semantic = np.argmax(logits, axis=axis).astype(np.int32)
    peak = np.max(logits, axis=axis, keepdims=True)
    confidence = np.float32(1.0) / np.sum(np.exp(logits - peak), axis=axis, dtype=np.float32)
    return semantic, confidence.astype(np.float32, copy=False)


def merge_panoptic(semantic: np.ndarray, grid_instance: np.ndarray, grid_class: np.ndarray,
                   small_stuff: np.ndarray, thing_ids: Sequence[int], stride: int,
                   label_divisor: int, void_id: int) -> Tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Map grid instances to network resolution and build the panoptic map (step 6).

    Args:
        semantic: int (H, W) argmax classes at network resolution.
        grid_instance: int (H/s, W/s) kept instance id per cell (0 = none).
        grid_class: int (H/s, W/s) voted class of the cell's instance (any value where 0).
        small_stuff: bool (num_classes,) stuff classes to turn void in ``panoptic``.
        thing_ids: Thing class ids.
        stride: Grouping stride s.
        label_divisor, void_id: Panoptic id encoding.

    Returns:
        ``(instance, panoptic)``, int32 (H, W) each.
    """
    semantic = np.asarray(semantic, dtype=np.int32)
    is_thing = np.isin(semantic, np.asarray(list(thing_ids), dtype=np.int32))
    instance = np.where(is_thing, from_grid(grid_instance, stride), 0).astype(np.int32)
    category = np.where(instance > 0, from_grid(grid_class, stride), semantic).astype(np.int32)
    panoptic = category * np.int32(label_divisor) + instance
    panoptic[small_stuff[semantic]] = void_id * label_divisor
    return instance, panoptic.astype(np.int32)


def panoptic_from_heads(semantic_logits: np.ndarray, center: np.ndarray, offset: np.ndarray,
                        thing_ids: Sequence[int],
                        settings: Optional[PostprocessSettings] = None,
                        center_threshold: Optional[float] = None, label_divisor: int = 1000,
                        void_id: int = 255) -> PanopticOutput:
    """Panoptic-DeepLab post-processing of one image (steps 1-6 of the module docstring).

    Args:
        semantic_logits: float (C, H, W).
        center: float (H/r, W/r) or (1, H/r, W/r) centre heatmap at the network's
            ``instance_stride`` r (inferred from the shapes; 1 = full resolution).
        offset: float (2, H/r, W/r) (dy, dx) in network pixels towards the instance centre.
        thing_ids: Thing class ids.
        settings: Post-processing settings (defaults when None).
        center_threshold: Overrides ``settings.center_threshold`` when given.
        label_divisor, void_id: Panoptic id encoding.

    Returns:
        ``PanopticOutput`` with (H, W) maps and (top_k,) instance scores.
    """
    logits = np.asarray(semantic_logits, dtype=np.float32)
    if logits.ndim != 3:
        raise ValueError(f'semantic_logits must be (C, H, W), got shape {logits.shape}')
    semantic, confidence = semantic_from_logits(logits)
    instance, panoptic, scores = panoptic_from_semantic(
        semantic, center, offset, thing_ids, logits.shape[0], settings, center_threshold,
        label_divisor, void_id)
    return PanopticOutput(semantic=semantic, confidence=confidence, instance=instance,
                          panoptic=panoptic, instance_score=scores)


def panoptic_from_semantic(semantic: np.ndarray, center: np.ndarray, offset: np.ndarray,
                           thing_ids: Sequence[int], num_classes: int,
                           settings: Optional[PostprocessSettings] = None,
                           center_threshold: Optional[float] = None, label_divisor: int = 1000,
                           void_id: int = 255
                           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 2-6 of the module docstring on an argmax map already computed (step 1).

    The post-processing search (``training.tuning``) runs this many times per frame with
    the argmax done once.

    Args:
        semantic: int (H, W) argmax classes.
        center, offset: As for ``panoptic_from_heads``.
        thing_ids: Thing class ids.
        num_classes: Number of classes C of the logits.
        settings, center_threshold, label_divisor, void_id: As for ``panoptic_from_heads``.

    Returns:
        ``(instance, panoptic, instance_score)``: int32 (H, W) maps (thing pixels of an
        instance carry its voted class in ``panoptic``) and float32 (top_k,) scores.
    """
    settings = settings or PostprocessSettings()
    semantic = np.asarray(semantic)
    if semantic.ndim != 2:
        raise ValueError(f'semantic must be (H, W), got shape {semantic.shape}')
    height, width = semantic.shape
    heat = np.asarray(center, dtype=np.float32)
    heat = heat[0] if heat.ndim == 3 and heat.shape[0] == 1 else heat
    offset = np.asarray(offset, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f'center must be (h, w) or (1, h, w), got shape {np.shape(center)}')
    head_stride = instance_stride_of(height, width, heat.shape)
    if offset.shape != (2,) + heat.shape:
        raise ValueError(
            f'offset {np.shape(offset)} must be (2, {heat.shape[0]}, {heat.shape[1]}) to '
            f'match the centre heatmap {np.shape(center)}')
    validate_settings(settings, num_classes, thing_ids, label_divisor, void_id)
    stride = settings.grouping_stride
    check_grid_size(height, width, stride)
    threshold = settings.center_threshold if center_threshold is None else center_threshold

    grid_semantic = to_grid(semantic, stride)
    centers = find_centers(heads_to_grid(heat, head_stride, stride), threshold,
                           grid_nms_kernel(settings.nms_kernel, stride), settings.top_k)
    slots = centers.valid.size
    distance, target_norm = grouping_distances(
        heads_to_grid(offset, head_stride, stride), centers, stride)
    is_thing = np.zeros(num_classes, dtype=bool)
    is_thing[list(thing_ids)] = True
    thing_cells = is_thing[grid_semantic.ravel()]
    valid = centers.valid.copy()
    if settings.min_center_votes > 0:  # step 3b
        votes = center_votes(distance, target_norm, thing_cells,
                             vote_radius_in_cells(settings))
        valid &= votes * stride * stride >= settings.min_center_votes
        distance = np.where(valid, distance, np.float32(INVALID_CENTER_DISTANCE))
    assignment = nearest_centers(distance, valid, grid_semantic.shape)
    classes, cells = vote_instance_classes(assignment, grid_semantic, thing_ids, slots)
    if settings.class_aware_grouping:  # step 4b
        at_center = grid_semantic.ravel()[centers.y * grid_semantic.shape[1] + centers.x]
        center_class = np.where(is_thing[at_center], at_center, classes)
        valid &= cells >= 1
        mismatch = thing_cells.reshape(-1, 1) & (
            grid_semantic.reshape(-1, 1) != center_class.reshape(1, -1))
        distance = (np.where(valid, distance, np.float32(INVALID_CENTER_DISTANCE))
                    + np.where(mismatch, np.float32(CLASS_MISMATCH_DISTANCE), np.float32(0)))
        assignment = nearest_centers(distance, valid, grid_semantic.shape)
        classes, cells = vote_instance_classes(assignment, grid_semantic, thing_ids, slots)
    keep = valid & (cells >= 1) & (cells * stride * stride >= settings.min_instance_area)
    instance_table = np.concatenate([[0], np.where(keep, np.arange(1, slots + 1), 0)])
    class_table = np.concatenate([[0], classes])

    stuff = np.ones(num_classes, dtype=bool)
    stuff[list(thing_ids)] = False
    stuff_cells = np.bincount(grid_semantic.ravel(), minlength=num_classes)[:num_classes]
    small_stuff = stuff & (stuff_cells * stride * stride < settings.stuff_area)

    instance, panoptic = merge_panoptic(
        semantic, instance_table[assignment], class_table[assignment], small_stuff, thing_ids,
        stride, label_divisor, void_id)
    scores = np.zeros(settings.top_k, dtype=np.float32)
    scores[:slots] = np.where(keep, centers.score, np.float32(0))
    return instance, panoptic, scores
