"""Numpy reference post-processing: semantic, instance and panoptic maps from network heads.

These pure functions are the specification that ``fused_postprocess.FusedPostprocess`` (the
same steps inside the exported ONNX / TensorRT graph) must reproduce; tests compare the two.
They also post-process semantic-only models (instances from connected components) and turn
panoptic maps into segment lists. Only numpy (and OpenCV for connected components).

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
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..manifest import PostprocessSettings

#: TensorRT's TopK layer needs a constant K below this.
MAX_TOP_K = 3840
#: Grouping distance of an invalid centre slot: finite (no inf * 0 in the matrix product),
#: far above any real squared distance on a grid.
INVALID_CENTER_DISTANCE = 1e30
#: Added to the grouping distance of a thing cell to a centre of another class in class-aware
#: grouping: above any squared distance on a grid (about 3.3e5 cells^2 at 2048x1024, stride
#: 4), far below ``INVALID_CENTER_DISTANCE``.
CLASS_MISMATCH_DISTANCE = 1e7


@dataclass
class Centers:
    """Instance centres found on the grouping grid, in top-k order.

    Attributes:
        y, x: int32 (K,) grid coordinates of each slot (meaningless where not ``valid``).
        score: float32 (K,) heatmap value of each slot, 0 where not ``valid``.
        valid: bool (K,) whether the slot holds a centre; valid slots come first.
    """

    y: np.ndarray
    x: np.ndarray
    score: np.ndarray
    valid: np.ndarray

    @property
    def count(self) -> int:
        return int(self.valid.sum())


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


@dataclass
class Segment:
    """One segment of a panoptic map.

    Attributes:
        id: Panoptic id (``category_id * label_divisor + instance``).
        category_id: Train id of the class.
        is_thing: Whether the class is a thing class.
        area: Pixel count.
        bbox: ``(x, y, width, height)`` in pixels, inclusive of the segment's pixels.
        score: Instance centre score for things when known, else mean confidence (0 without
            a confidence map).
    """

    id: int
    category_id: int
    is_thing: bool
    area: int
    bbox: Tuple[int, int, int, int]
    score: float


def validate_settings(settings: PostprocessSettings, num_classes: int,
                      thing_ids: Sequence[int], label_divisor: int, void_id: int) -> None:
    """Raise ``ValueError`` naming the bad setting when the post-processing cannot run."""
    if num_classes < 1:
        raise ValueError(f'num_classes must be at least 1, got {num_classes}')
    for thing_id in thing_ids:
        if not 0 <= int(thing_id) < num_classes:
            raise ValueError(f'thing id {thing_id} is not a class id (0..{num_classes - 1})')
    if 0 <= void_id < num_classes:
        raise ValueError(f'void_id {void_id} collides with a class id (0..{num_classes - 1})')
    if label_divisor < 1:
        raise ValueError(f'label_divisor must be positive, got {label_divisor}')
    if not 1 <= settings.top_k < min(label_divisor, MAX_TOP_K):
        raise ValueError(
            f'top_k {settings.top_k} must be in 1..{min(label_divisor, MAX_TOP_K) - 1} '
            f"(below label_divisor {label_divisor} and TensorRT's TopK limit {MAX_TOP_K})")
    if settings.nms_kernel < 1 or settings.nms_kernel % 2 == 0:
        raise ValueError(f'nms_kernel must be a positive odd number, got {settings.nms_kernel}')
    if settings.grouping_stride < 1:
        raise ValueError(
            f'grouping_stride must be a positive integer, got {settings.grouping_stride}')
    if settings.stuff_area < 0 or settings.min_instance_area < 0:
        raise ValueError(
            f'stuff_area ({settings.stuff_area}) and min_instance_area '
            f'({settings.min_instance_area}) must not be negative')
    if settings.min_center_votes < 0:
        raise ValueError(
            f'min_center_votes must not be negative, got {settings.min_center_votes}')
    if settings.center_vote_radius < 1:
        raise ValueError(
            f'center_vote_radius must be at least 1 pixel, got {settings.center_vote_radius}')
    if not isinstance(settings.class_aware_grouping, (bool, np.bool_)):
        raise ValueError(f'class_aware_grouping must be true or false, got '
                         f'{settings.class_aware_grouping!r}')


def check_grid_size(height: int, width: int, stride: int) -> None:
    """Raise ``ValueError`` unless ``height`` and ``width`` are multiples of ``stride``."""
    if height < 1 or width < 1 or height % stride or width % stride:
        raise ValueError(
            f'network size {width}x{height} must be a positive multiple of grouping_stride '
            f'{stride} in both directions')


def grid_nms_kernel(nms_kernel: int, stride: int) -> int:
    """Odd max-pool kernel on the grouping grid covering ``nms_kernel``'s radius (step 3)."""
    radius = nms_kernel // 2
    return 2 * (-(-radius // stride)) + 1


def vote_radius_in_cells(settings: PostprocessSettings) -> float:
    """``center_vote_radius`` in grouping-grid cells (network pixels / grouping stride)."""
    return float(settings.center_vote_radius) / float(settings.grouping_stride)


def num_center_slots(top_k: int, grid_height: int, grid_width: int) -> int:
    """The constant K of the top-k: ``min(top_k, grid cells)``."""
    return min(top_k, grid_height * grid_width)


def to_grid(array: np.ndarray, stride: int) -> np.ndarray:
    """Sample (..., H, W) at grid cells: ``array[..., s//2::s, s//2::s]`` -> (..., H/s, W/s)."""
    start = stride // 2
    return array[..., start::stride, start::stride]


def upsample_bilinear(array: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling of float (..., h, w) by an integer factor, half-pixel centres.

    The same as ONNX ``Resize`` (linear, ``half_pixel``) and torch's ``interpolate``
    (``align_corners=False``): output pixel ``o`` reads source ``(o + 0.5) / factor - 0.5``,
    clamped to the border. Returns float32 (..., h * factor, w * factor).
    """
    result = np.asarray(array, dtype=np.float32)
    for axis in (-1, -2):  # along rows first, as torch and ONNX Runtime do
        size = result.shape[axis]
        source = (np.arange(size * factor, dtype=np.float32) + np.float32(0.5)) \
            / np.float32(factor) - np.float32(0.5)
        source = np.maximum(source, np.float32(0))
        low = np.minimum(np.floor(source).astype(np.int64), size - 1)
        high = np.minimum(low + 1, size - 1)
        weight = (source - low).astype(np.float32)
        shape = [1] * result.ndim
        shape[axis] = weight.size
        weight = weight.reshape(shape)
        result = (np.take(result, low, axis=axis) * (np.float32(1) - weight)
                  + np.take(result, high, axis=axis) * weight).astype(np.float32)
    return result


def heads_to_grid(array: np.ndarray, head_stride: int, grid_stride: int) -> np.ndarray:
    """Centre heatmap or offsets (..., H/r, W/r) at head stride r -> the grid (..., H/s, W/s).

    r = s: unchanged; r < s: strided sampling ``[k//2::k]`` with k = s/r; r > s: bilinear
    upsampling by r/s (``upsample_bilinear``). One of r, s must divide the other.
    """
    if head_stride == grid_stride:
        return np.asarray(array)
    if head_stride < grid_stride:
        if grid_stride % head_stride:
            raise ValueError(f'grouping_stride {grid_stride} is not a multiple of the '
                             f'instance stride {head_stride}')
        return to_grid(array, grid_stride // head_stride)
    if head_stride % grid_stride:
        raise ValueError(f'instance stride {head_stride} is not a multiple of '
                         f'grouping_stride {grid_stride}')
    return upsample_bilinear(array, head_stride // grid_stride)


def from_grid(array: np.ndarray, stride: int) -> np.ndarray:
    """Nearest upsampling of (..., h, w) to (..., h*s, w*s): each cell repeated s x s."""
    return np.repeat(np.repeat(array, stride, axis=-2), stride, axis=-1)


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


def _max_pool_same(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    """Max over a ``kernel x kernel`` window, stride 1, padding that never wins. (h, w)."""
    radius = kernel // 2
    if radius == 0:
        return heatmap.copy()
    padded = np.pad(heatmap, radius, mode='constant', constant_values=-np.inf)
    height, width = heatmap.shape
    rows = padded[:, radius:radius + width].copy()
    for shift in range(kernel):
        np.maximum(rows, padded[:, shift:shift + width], out=rows)
    pooled = rows[radius:radius + height].copy()
    for shift in range(kernel):
        np.maximum(pooled, rows[shift:shift + height], out=pooled)
    return pooled


def find_centers(center: np.ndarray, center_threshold: float, nms_kernel: int,
                 top_k: int) -> Centers:
    """Centre NMS by max-pooling plus top-k (step 3), on whatever grid ``center`` is given.

    Args:
        center: float (h, w) centre heatmap (already sampled on the grouping grid).
        center_threshold: Centres must be strictly above this (compared in float32).
        nms_kernel: Odd max-pool kernel in cells of ``center``.
        top_k: Number of slots; K = ``min(top_k, h * w)``.

    Returns:
        ``Centers`` with K slots, valid ones first in descending score.
    """
    heat = np.asarray(center, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f'center heatmap must be (h, w), got shape {heat.shape}')
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f'nms_kernel must be a positive odd number, got {nms_kernel}')
    threshold = np.float32(center_threshold)
    keep = (heat == _max_pool_same(heat, nms_kernel)) & (heat > threshold)
    masked = np.where(keep, heat, np.float32(-np.inf)).ravel()
    slots = num_center_slots(top_k, *heat.shape)
    order = np.argsort(-masked, kind='stable')[:slots]
    scores = masked[order]
    valid = scores > threshold
    y, x = np.divmod(order, heat.shape[1])
    return Centers(y=y.astype(np.int32), x=x.astype(np.int32),
                   score=np.where(valid, scores, np.float32(0)).astype(np.float32),
                   valid=valid)


def grouping_distances(offset: np.ndarray, centers: Centers, stride: int
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Squared grid distances from every cell's offset target to every valid centre (step 4).

    Args:
        offset: float (2, h, w) (dy, dx) in network pixels, sampled on the grouping grid.
        centers: Output of ``find_centers`` on the same grid.
        stride: Grouping stride (network pixels per cell).

    Returns:
        ``(distance, target_norm)``: float32 (h*w, K) ``|t - c|^2 - |t|^2`` per cell and slot
        (``INVALID_CENTER_DISTANCE`` for invalid slots), float32 (h*w, 1) ``|t|^2``, with
        coordinates from the middle cell, in the graph's order of operations.
    """
    offset = np.asarray(offset, dtype=np.float32)
    if offset.ndim != 3 or offset.shape[0] != 2:
        raise ValueError(f'offset must be (2, h, w), got shape {offset.shape}')
    height, width = offset.shape[1:]
    step = np.float32(stride)
    grid_y, grid_x = np.meshgrid(np.arange(height, dtype=np.float32) - np.float32(height // 2),
                                 np.arange(width, dtype=np.float32) - np.float32(width // 2),
                                 indexing='ij')
    target_y = (grid_y + offset[0] / step).reshape(-1, 1)
    target_x = (grid_x + offset[1] / step).reshape(-1, 1)
    distance = np.full((height * width, centers.valid.size), INVALID_CENTER_DISTANCE,
                       dtype=np.float32)
    slots = np.flatnonzero(centers.valid)
    if slots.size:
        center_y = (centers.y[slots] - height // 2).astype(np.float32)
        center_x = (centers.x[slots] - width // 2).astype(np.float32)
        # (ty * -2cy + tx * -2cx) + 1 * |c|^2, summed in the graph's order.
        distance[:, slots] = (target_y * (np.float32(-2) * center_y)
                              + target_x * (np.float32(-2) * center_x)
                              + (center_y * center_y + center_x * center_x))
    return distance, target_y * target_y + target_x * target_x


def nearest_centers(distance: np.ndarray, valid: np.ndarray, shape: Tuple[int, int]
                    ) -> np.ndarray:
    """int32 ``shape`` grid of the nearest valid slot + 1 per cell (ties -> lowest slot),
    0 everywhere when no slot is valid."""
    if not np.any(valid):
        return np.zeros(shape, dtype=np.int32)
    return (np.argmin(distance, axis=1).astype(np.int32) + 1).reshape(shape)


def center_votes(distance: np.ndarray, target_norm: np.ndarray, thing_cells: np.ndarray,
                 radius: float) -> np.ndarray:
    """Per slot, the thing cells whose offset target lies strictly within ``radius`` (grid
    units) of the centre (step 3b). int64 (K,); 0 for invalid slots.

    ``|t - c|^2 < radius^2`` is evaluated as ``distance < radius^2 - |t|^2`` in float32, as
    the graph does.

    Args:
        distance, target_norm: From ``grouping_distances`` ((cells, K), (cells, 1)).
        thing_cells: bool (cells,) cells whose class is a thing class.
        radius: Radius in grid cells.
    """
    reach = np.where(np.asarray(thing_cells).reshape(-1, 1),
                     np.float32(radius * radius) - target_norm,
                     np.float32(-INVALID_CENTER_DISTANCE))
    return np.count_nonzero(distance < reach, axis=0)


def vote_instance_classes(assignment: np.ndarray, semantic: np.ndarray,
                          thing_ids: Sequence[int], slots: int
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Majority vote of thing classes per instance (step 5, without the area rules).

    Args:
        assignment: int (h, w) grid instance ids 0..slots (0 = none).
        semantic: int (h, w) grid semantic classes.
        thing_ids: Thing class ids.
        slots: Number of instance slots K.

    Returns:
        ``(classes, cells)``: int32 (K,) voted class of instance k+1 (lowest thing id when it
        has no thing cell) and int64 (K,) number of its thing cells.
    """
    things = np.array(sorted(set(int(t) for t in thing_ids)), dtype=np.int64)
    if things.size == 0:
        return np.zeros(slots, dtype=np.int32), np.zeros(slots, dtype=np.int64)
    lookup = np.full(max(int(semantic.max(initial=0)), int(things[-1])) + 1, -1, np.int64)
    lookup[things] = np.arange(things.size)
    thing_index = lookup[np.asarray(semantic, dtype=np.int64).ravel()]
    instance = np.asarray(assignment, dtype=np.int64).ravel()
    voting = (thing_index >= 0) & (instance > 0)
    votes = np.bincount((instance[voting] - 1) * things.size + thing_index[voting],
                        minlength=slots * things.size).reshape(slots, things.size)
    return things[np.argmax(votes, axis=1)].astype(np.int32), votes.sum(axis=1)


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

    The post-processing search (``postprocess_tuning``) runs this many times per frame with
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


def instance_stride_of(height: int, width: int, head_shape: Sequence[int]) -> int:
    """The integer r with ``head_shape[-2:] == (height / r, width / r)``, else ``ValueError``."""
    head_height, head_width = (int(v) for v in tuple(head_shape)[-2:])
    if head_height < 1 or head_width < 1 or height % head_height or width % head_width \
            or height // head_height != width // head_width:
        raise ValueError(
            f'instance outputs of size {head_width}x{head_height} are not the network size '
            f'{width}x{height} divided by one integer stride')
    return height // head_height


def instances_from_connected_components(semantic: np.ndarray, thing_ids: Sequence[int],
                                        min_area: int = 0, connectivity: int = 8,
                                        max_instances: Optional[int] = None) -> np.ndarray:
    """Instances of a semantic-only model: connected components of each thing class.

    Ids run 1..n over thing classes in ascending order, components in OpenCV's raster
    order within a class. Components smaller than ``min_area`` pixels get 0.

    Args:
        semantic: int (H, W) class map.
        thing_ids: Thing class ids.
        min_area: Smallest component kept, in pixels.
        connectivity: 4 or 8.
        max_instances: Keep only this many largest components (ties -> lower id), so ids
            stay below a label divisor; None keeps all.

    Returns:
        int32 (H, W) instance ids, 0 = none.
    """
    import cv2

    semantic = np.asarray(semantic)
    if semantic.ndim != 2:
        raise ValueError(f'semantic must be (H, W), got shape {semantic.shape}')
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    if max_instances is not None and max_instances < 0:
        raise ValueError(f'max_instances must not be negative, got {max_instances}')
    instance = np.zeros(semantic.shape, dtype=np.int32)
    areas: List[np.ndarray] = []
    next_id = 1
    # A class absent from the frame has no component: skipping it keeps the ids and saves
    # a full-frame labelling pass (most of this function's time at 1024x512).
    present = (np.flatnonzero(np.bincount(semantic.ravel(), minlength=256))
               if semantic.dtype == np.uint8 else np.unique(semantic))
    for thing_id in sorted(set(int(t) for t in thing_ids) & set(present.tolist())):
        mask = (semantic == thing_id).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=connectivity, ltype=cv2.CV_32S)
        if count <= 1:
            continue
        component_area = stats[1:, cv2.CC_STAT_AREA]
        kept = component_area >= min_area
        new_ids = np.zeros(count, dtype=np.int32)
        new_ids[1:][kept] = np.arange(next_id, next_id + int(kept.sum()), dtype=np.int32)
        instance = np.where(labels > 0, new_ids[labels], instance)
        areas.append(component_area[kept])
        next_id += int(kept.sum())
    total = next_id - 1
    if max_instances is not None and total > max_instances:
        all_areas = np.concatenate(areas)
        order = np.argsort(-all_areas, kind='stable')[:max_instances]
        renumber = np.zeros(total + 1, dtype=np.int32)
        renumber[np.sort(order) + 1] = np.arange(1, max_instances + 1, dtype=np.int32)
        instance = renumber[instance]
    return instance


def panoptic_from_semantic_and_instance(semantic: np.ndarray, instance: np.ndarray,
                                        label_divisor: int = 1000,
                                        void_id: int = 255) -> np.ndarray:
    """``semantic * label_divisor + instance``, void pixels -> ``void_id * label_divisor``.

    Args:
        semantic: int (H, W) class map (may contain ``void_id``).
        instance: int (H, W) instance ids in 0..label_divisor-1.

    Returns:
        int32 (H, W) panoptic ids.
    """
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.ndim != 2 or semantic.shape != instance.shape:
        raise ValueError(
            f'semantic {semantic.shape} and instance {instance.shape} must be equal (H, W)')
    if instance.size and (instance.min() < 0 or instance.max() >= label_divisor):
        raise ValueError(
            f'instance ids {instance.min()}..{instance.max()} do not fit label_divisor '
            f'{label_divisor} (need 0..{label_divisor - 1})')
    semantic = semantic.astype(np.int32)
    panoptic = semantic * np.int32(label_divisor) + instance.astype(np.int32)
    return np.where(semantic == void_id, np.int32(void_id * label_divisor),
                    panoptic).astype(np.int32)


def extract_segments(panoptic: np.ndarray, thing_ids: Sequence[int], label_divisor: int = 1000,
                     void_id: int = 255, confidence: Optional[np.ndarray] = None,
                     instance_score: Optional[np.ndarray] = None) -> List[Segment]:
    """List the segments of a panoptic map, void excluded, in ascending id order.

    Vectorised: one ``np.unique`` and per-row / per-column ``bincount`` presence tables.

    Args:
        panoptic: int (H, W) panoptic ids.
        thing_ids: Thing class ids.
        label_divisor, void_id: Panoptic id encoding.
        confidence: Optional float (H, W) per-pixel confidence (score of stuff and of things
            without ``instance_score``).
        instance_score: Optional float (top_k,) score of instance id k+1.

    Returns:
        One ``Segment`` per non-void id.
    """
    panoptic = np.asarray(panoptic)
    if panoptic.ndim != 2:
        raise ValueError(f'panoptic must be (H, W), got shape {panoptic.shape}')
    if confidence is not None and np.shape(confidence) != panoptic.shape:
        raise ValueError(
            f'confidence {np.shape(confidence)} must match panoptic {panoptic.shape}')
    height, width = panoptic.shape
    ids, inverse = np.unique(panoptic, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = ids.size
    rows = np.repeat(np.arange(height), width)
    cols = np.tile(np.arange(width), height)
    row_hits = np.bincount(inverse * height + rows, minlength=count * height)
    row_hits = row_hits.reshape(count, height) > 0
    col_hits = np.bincount(inverse * width + cols, minlength=count * width)
    col_hits = col_hits.reshape(count, width) > 0
    top = np.argmax(row_hits, axis=1)
    bottom = height - 1 - np.argmax(row_hits[:, ::-1], axis=1)
    left = np.argmax(col_hits, axis=1)
    right = width - 1 - np.argmax(col_hits[:, ::-1], axis=1)
    area = np.bincount(inverse, minlength=count)
    if confidence is not None:
        weights = np.asarray(confidence, dtype=np.float64).reshape(-1)
        mean_confidence = np.bincount(inverse, weights=weights, minlength=count) / area
    else:
        mean_confidence = np.zeros(count)
    scores = None if instance_score is None else np.asarray(instance_score, dtype=np.float64)
    things = set(int(t) for t in thing_ids)
    segments: List[Segment] = []
    for index in range(count):
        panoptic_id = int(ids[index])
        category, instance_id = divmod(panoptic_id, label_divisor)
        if category == void_id:
            continue
        is_thing = category in things
        score = float(mean_confidence[index])
        if is_thing and instance_id > 0 and scores is not None and instance_id <= scores.size:
            score = float(scores[instance_id - 1])
        segments.append(Segment(
            id=panoptic_id, category_id=category, is_thing=is_thing, area=int(area[index]),
            bbox=(int(left[index]), int(top[index]), int(right[index] - left[index] + 1),
                  int(bottom[index] - top[index] + 1)),
            score=score))
    return segments
