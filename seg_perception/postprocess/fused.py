"""Post-processing as a torch module, exported as the tail of the ONNX / TensorRT graph.

``FusedPostprocess`` runs the steps of the numpy reference; the algorithm is written down
once, in the module docstring of ``reference`` (tests compare the two, eager and exported).
What the graph form adds:

* Static shapes: network size H x W and instance stride r are fixed at construction, so the
  grid, the pooling kernel and K = ``min(top_k, grid cells)`` (TopK's constant K) are
  constants. The heads reach the grid by strided Slice (r < s) or a linear Resize by r/s
  (r > s), never by a resize to full resolution.
* Op choices: step 1 (class, confidence) is in ``packed``: sums over classes are MatMuls,
  and ENet's logits arrive packed channels-last so the reductions read contiguous memory.
  The grouping distances (step 4) are one batched MatMul of (ty, tx, 1) per cell
  with (-2cy, -2cx, cy^2 + cx^2) per slot, invalid slots (0, 0, 1e30), then ArgMin: cells x
  slots elements pass through memory twice instead of six times as with explicit
  differences. Centre votes (3b) are counted by a MatMul with the ones row, after which the
  distance MatMul runs again. Class-aware grouping (4b) takes the centre's class by
  GatherElements at the TopK index and folds the penalty into the same MatMul (rows gain the
  cell's thing one-hot, columns ``Where(centre one-hot, 0, 1e7)``). Each of 3b and 4b adds a
  few passes over the cells x K matrix (see docs/architecture.md for the cost). The vote
  (step 5) is one-hot(instance)^T . one-hot(thing class) as one batched MatMul; the nearest
  upsampling (step 6) is Expand + Reshape.
* Only ops that onnx-tensorrt parses for TensorRT 8.5 and 10.x: ArgMax/ArgMin, ReduceMax,
  ReduceSum, Exp, Slice, MaxPool (no indices), TopK (constant K), Gather, GatherElements,
  MatMul, Transpose, Resize (linear, constant scales), Equal/Greater/Less/And, Where, Cast,
  Concat, Expand, Reshape, Squeeze; no loops, no NonZero, no ScatterND. All integer outputs
  are int32.
* Precision: the grouping distances are squared grid coordinates (up to ~1e5 on a 2048-wide
  network), which FP16 cannot hold: TensorRT builds keep the ``/postprocess/`` layers in
  FP32 (``runtime.engine_options.POSTPROCESS_LAYERS``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..manifest import PostprocessSettings
from ..models.layers import upsample
from .grid import (
    check_grid_size,
    CLASS_MISMATCH_DISTANCE,
    grid_nms_kernel,
    INVALID_CENTER_DISTANCE,
    num_center_slots,
    validate_settings,
    vote_radius_in_cells,
)
from .packed import (
    check_packed_shape,
    packed_class_and_confidence,
    plain_class_and_confidence,
)


class FusedPostprocess(nn.Module):
    """Graph post-processing for a fixed network size; see the module docstring.

    Args:
        num_classes: Number of semantic classes C.
        thing_ids: Class ids that get instances.
        settings: Panoptic-DeepLab settings (``center_threshold`` is the default threshold
            when ``forward`` gets none).
        label_divisor: Panoptic id = class * label_divisor + instance.
        void_id: Class id of void in the panoptic map.
        panoptic: False makes ``forward`` return only semantic and confidence.
        height, width: Network input size H, W (multiples of ``grouping_stride``).
        instance_stride: Stride r of the centre / offset maps the network hands over
            ((B, 1, H/r, W/r) and (B, 2, H/r, W/r)); one of r and the grouping stride must
            divide the other.
        packed_semantic: ``forward`` gets the logits packed, (B, H/2 * W/2 * 4, C) from
            ``models.layers.packed_transposed_conv``, instead of (B, C, H, W).
    """

    def __init__(self, num_classes: int, thing_ids: Sequence[int],
                 settings: Optional[PostprocessSettings] = None, label_divisor: int = 1000,
                 void_id: int = 255, panoptic: bool = True, *, height: int,
                 width: int, instance_stride: int = 1, packed_semantic: bool = False) -> None:
        super().__init__()
        settings = settings or PostprocessSettings()
        validate_settings(settings, num_classes, thing_ids, label_divisor, void_id)
        things = sorted(set(int(t) for t in thing_ids))
        self.num_classes = num_classes
        self.panoptic = panoptic
        self.packed_semantic = bool(packed_semantic)
        self.height = height
        self.width = width
        self.label_divisor = label_divisor
        self.void_id = void_id
        self.stride = settings.grouping_stride
        self.default_threshold = float(settings.center_threshold)
        self.top_k = settings.top_k
        self.stuff_area = settings.stuff_area
        self.min_instance_area = settings.min_instance_area
        self.min_center_votes = settings.min_center_votes
        self.vote_radius_squared = vote_radius_in_cells(settings) ** 2
        self.class_aware_grouping = bool(settings.class_aware_grouping)
        if not panoptic:
            return
        check_grid_size(height, width, self.stride)
        check_grid_size(height, width, instance_stride)
        bigger, smaller = max(instance_stride, self.stride), min(instance_stride, self.stride)
        if instance_stride < 1 or bigger % smaller:
            raise ValueError(f'instance_stride {instance_stride} and grouping_stride '
                             f'{self.stride}: one must divide the other')
        self.instance_stride = instance_stride
        grid_height, grid_width = height // self.stride, width // self.stride
        self.grid_height, self.grid_width = grid_height, grid_width
        self.nms_kernel = grid_nms_kernel(settings.nms_kernel, self.stride)
        self.slots = num_center_slots(settings.top_k, grid_height, grid_width)
        # Grid coordinates from the middle cell, as in grouping.grouping_distances.
        grid_y, grid_x = torch.meshgrid(
            torch.arange(grid_height, dtype=torch.float32) - float(grid_height // 2),
            torch.arange(grid_width, dtype=torch.float32) - float(grid_width // 2),
            indexing='ij')
        # Lookup tables are int32, not bool: Gather of bool data is not portable to TensorRT.
        is_thing = torch.zeros(num_classes, dtype=torch.int32)
        is_thing[things] = 1
        self.register_buffer('grid_y', grid_y.reshape(-1), persistent=False)
        self.register_buffer('grid_x', grid_x.reshape(-1), persistent=False)
        # Without thing classes a -1 placeholder never matches, so no instance is kept.
        self.register_buffer('thing_ids', torch.tensor(things or [-1], dtype=torch.int32),
                             persistent=False)
        self.register_buffer('is_thing', is_thing, persistent=False)
        contiguous = bool(things) and things == list(range(things[0], things[-1] + 1))
        self.thing_range = (things[0], things[-1]) if contiguous else None
        # int32 scalars to compare int32 maps with: a Python int exports as an int64
        # constant, for which the exporter casts the whole full-resolution map to int64.
        first, last = self.thing_range or (0, 0)
        self.register_buffer('first_thing', torch.tensor(first, dtype=torch.int32),
                             persistent=False)
        self.register_buffer('last_thing', torch.tensor(last, dtype=torch.int32),
                             persistent=False)
        self.register_buffer('no_instance_id', torch.tensor(0, dtype=torch.int32),
                             persistent=False)
        self.register_buffer('slot_ids', torch.arange(1, self.slots + 1, dtype=torch.int32),
                             persistent=False)
        self.register_buffer('unused_scores',
                             torch.zeros((1, settings.top_k - self.slots), dtype=torch.float32),
                             persistent=False)
        # One-hot rows of a cell's class looked up by a Gather: a row copy per cell instead
        # of an Equal and a bool -> float Cast over every (cell, class) pair.
        thing_onehot = torch.zeros(num_classes, max(len(things), 1), dtype=torch.float32)
        for column, thing in enumerate(things):
            thing_onehot[thing, column] = 1.0
        self.register_buffer('thing_onehot', thing_onehot, persistent=False)  # (C, T)
        self.register_buffer('class_onehot', torch.eye(num_classes, dtype=torch.float32),
                             persistent=False)
        self.register_buffer('panoptic_class_ids',
                             torch.arange(num_classes, dtype=torch.int32) * label_divisor,
                             persistent=False)

    def forward(self, semantic_logits: torch.Tensor, center: Optional[torch.Tensor] = None,
                offset: Optional[torch.Tensor] = None,
                center_threshold: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Post-process a batch (outputs ordered as ``manifest.PANOPTIC_OUTPUTS``).

        Args:
            semantic_logits: float (B, C, H, W), or (B, H/2 * W/2 * 4, C) when built with
                ``packed_semantic``.
            center: float (B, 1, H/r, W/r) heatmap, r = ``instance_stride`` (panoptic only).
            offset: float (B, 2, H/r, W/r) (dy, dx) in network pixels (panoptic only).
            center_threshold: float (1,) run-time threshold; None uses the settings' value.

        Returns:
            semantic int32 (B, H, W), confidence float32 (B, H, W) and, when panoptic,
            instance int32 (B, H, W), panoptic int32 (B, H, W), instance_score float32
            (B, top_k).
        """
        # Shapes are static in an export; checking them while tracing only adds warnings.
        checking = not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())
        logits = semantic_logits.float()
        if self.packed_semantic:
            if checking:
                check_packed_shape(logits, self.num_classes, self.height, self.width)
            best, confidence = packed_class_and_confidence(logits, self.height, self.width)
        else:
            expected = (self.num_classes, self.height, self.width)
            if checking and (logits.dim() != 4 or tuple(logits.shape[1:]) != expected):
                raise ValueError(f'semantic_logits must be (B, {expected[0]}, {expected[1]}, '
                                 f'{expected[2]}), got {tuple(logits.shape)}')
            best, confidence = plain_class_and_confidence(logits)
        semantic = best.to(torch.int32)
        if not self.panoptic:
            return semantic, confidence
        if center is None or offset is None:
            raise ValueError('a panoptic FusedPostprocess needs center and offset heads')
        batch = logits.shape[0]
        head_size = (self.height // self.instance_stride, self.width // self.instance_stride)
        if checking and (tuple(center.shape) != (batch, 1) + head_size
                         or tuple(offset.shape) != (batch, 2) + head_size):
            raise ValueError(
                f'center {tuple(center.shape)} must be (B, 1, {head_size[0]}, {head_size[1]}) '
                f'and offset {tuple(offset.shape)} (B, 2, {head_size[0]}, {head_size[1]}): '
                f'the network size / instance_stride {self.instance_stride}')
        if center_threshold is None:
            threshold = torch.full((1,), self.default_threshold, dtype=torch.float32,
                                   device=logits.device)
        else:
            threshold = center_threshold.float().reshape(1)
        return self._panoptic(semantic, best, confidence, center.float(), offset.float(),
                              threshold)

    def _panoptic(self, semantic: torch.Tensor, best: torch.Tensor, confidence: torch.Tensor,
                  center: torch.Tensor, offset: torch.Tensor,
                  threshold: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        # semantic: int32 (B, H, W); best: the same classes as int64 (gather indices).
        batch = semantic.shape[0]
        stride, start = self.stride, self.stride // 2
        cells = self.grid_height * self.grid_width
        grid_semantic = semantic[:, start::stride, start::stride].reshape(batch, cells)
        heat = self._heads_to_grid(center)
        grid_offset = self._heads_to_grid(offset).reshape(batch, 2, cells)

        scores, valid, center_y, center_x, center_index = self._find_centers(heat, threshold)
        # (B, 3, cells) rows (ty, tx, 1); the distances are one MatMul with the (B, 3, K)
        # columns of ``_center_columns``. The ones row is derived from the data: expand() of
        # a constant adds Shape ops.
        target_y = self.grid_y + grid_offset[:, :1] / float(stride)
        target_x = self.grid_x + grid_offset[:, 1:] / float(stride)
        ones = grid_offset[:, :1] * 0.0 + 1.0  # (B, 1, cells)
        targets = torch.cat([target_y, target_x, ones], dim=1).transpose(1, 2)
        distance = torch.matmul(targets, self._center_columns(center_y, center_x, valid))
        # One-hot of thing classes per cell (B, cells, T); its row sums mark thing cells.
        thing_onehot = _rows(self.thing_onehot, grid_semantic)

        if self.min_center_votes > 0:  # step 3b: thing cells pointing near each centre
            # |t - c|^2 < r^2  <=>  distance < r^2 - |t|^2; non-thing cells get -1e30 (never).
            is_thing_cell = thing_onehot.sum(dim=2, keepdim=True) > 0.0  # (B, cells, 1)
            reach = torch.where(is_thing_cell, self.vote_radius_squared
                                - (target_y * target_y + target_x * target_x).transpose(1, 2),
                                -INVALID_CENTER_DISTANCE)
            # Counting by MatMul with the ones row: a ReduceSum over cells is 4x slower.
            center_votes = torch.matmul(ones, (distance < reach).float())[:, 0]  # (B, K)
            valid = valid & (center_votes * float(stride * stride)
                             >= float(self.min_center_votes))
            distance = torch.matmul(targets, self._center_columns(center_y, center_x, valid))
        assignment, voted_class, thing_cells = self._group(distance, valid, thing_onehot)

        if self.class_aware_grouping:  # step 4b: group again, preferring the cell's class
            at_center = torch.gather(grid_semantic, 1, center_index)
            center_is_thing = self.is_thing[at_center.to(torch.int64)] > 0
            center_class = torch.where(center_is_thing, at_center, voted_class)
            valid = valid & (thing_cells >= 1.0)
            # The penalty rides in the same MatMul: rows (ty, tx, 1, thing one-hot of the
            # cell), columns (-2cy, -2cx, |c|^2, 1e7 * (1 - one-hot of the centre's class)),
            # so a thing cell gets exactly + 0 or + 1e7 and a stuff cell + 0.
            centre_onehot = self.thing_ids.view(1, -1, 1) == center_class.unsqueeze(1)
            columns = torch.cat([self._center_columns(center_y, center_x, valid),
                                 torch.where(centre_onehot, 0.0, CLASS_MISMATCH_DISTANCE)],
                                dim=1)
            distance = torch.matmul(torch.cat([targets, thing_onehot], dim=2), columns)
            assignment, voted_class, thing_cells = self._group(distance, valid, thing_onehot)

        area = thing_cells * float(stride * stride)
        keep = valid & (thing_cells >= 1.0) & (area >= float(self.min_instance_area))

        # Slot 0 of each table is "no instance".
        no_instance = voted_class[:, :1] * 0  # (B, 1) zeros without Expand / ConstantOfShape
        instance_table = torch.cat(
            [no_instance, torch.where(keep, self.slot_ids.view(1, -1), 0)], dim=1)
        class_table = torch.cat([no_instance, voted_class], dim=1)
        assignment = assignment.to(torch.int64)
        grid_instance = torch.gather(instance_table, 1, assignment)
        grid_class = torch.gather(class_table, 1, assignment)
        # Full resolution costs a pass per op, so the ids are combined on the grid first:
        # an instance pixel's panoptic id is its cell's class * divisor + instance.
        grid_panoptic = grid_class * self.label_divisor + grid_instance
        instance = torch.where(self._thing_pixels(semantic, best),
                               self._upsample(grid_instance), 0)

        # Class areas by MatMul with the ones row: ReduceSum over cells is several x slower.
        class_counts = torch.matmul(ones, _rows(self.class_onehot, grid_semantic))[:, 0]
        small_stuff = ((class_counts * float(stride * stride) < float(self.stuff_area))
                       & (self.is_thing.view(1, -1) == 0))
        # Any other pixel's id by its class: class * divisor, or void for too small stuff.
        plain_ids = torch.where(small_stuff, self.void_id * self.label_divisor,
                                self.panoptic_class_ids.view(1, -1))
        pixel_plain = torch.gather(plain_ids, 1, best.reshape(batch, -1))
        panoptic = torch.where(instance > self.no_instance_id, self._upsample(grid_panoptic),
                               pixel_plain.reshape(semantic.shape))

        instance_score = torch.where(keep, scores, 0.0)
        if self.slots < self.top_k:
            unused = instance_score[:, :1] * self.unused_scores  # (B, top_k - K) zeros
            instance_score = torch.cat([instance_score, unused], dim=1)
        return semantic, confidence, instance, panoptic, instance_score

    @staticmethod
    def _center_columns(center_y: torch.Tensor, center_x: torch.Tensor,
                        valid: torch.Tensor) -> torch.Tensor:
        """(B, 3, K) columns (-2cy, -2cx, |c|^2); invalid slots (0, 0, 1e30)."""
        center_y = torch.where(valid, center_y, 0.0)
        center_x = torch.where(valid, center_x, 0.0)
        return torch.stack([center_y * -2.0, center_x * -2.0,
                            torch.where(valid, center_y * center_y + center_x * center_x,
                                        INVALID_CENTER_DISTANCE)], dim=1)

    def _group(self, distance: torch.Tensor, valid: torch.Tensor, thing_onehot: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps 4-5: nearest valid centre per cell and each instance's class vote.

        Args:
            distance: float (B, cells, K) grouping distances (invalid slots huge).
            valid: bool (B, K) valid slots.
            thing_onehot: float (B, cells, T) one-hot thing class per cell.

        Returns:
            assignment int32 (B, cells) slot + 1 (0 = no valid centre), voted class int32
            (B, K), thing cells float32 (B, K).
        """
        nearest = torch.argmin(distance, dim=2).to(torch.int32) + 1
        any_valid = valid.float().amax(dim=1, keepdim=True) > 0.0
        assignment = torch.where(any_valid, nearest, 0)
        # Votes by one MatMul: (B, K, cells) one-hot of instances x (B, cells, T) one-hot of
        # thing classes; counts are small integers, exact in float32.
        instance_onehot = (assignment.unsqueeze(1) == self.slot_ids.view(1, -1, 1)).float()
        votes = torch.matmul(instance_onehot, thing_onehot)
        return assignment, self.thing_ids[torch.argmax(votes, dim=2)], votes.sum(dim=2)

    def _heads_to_grid(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, c, H/r, W/r) at the instance stride -> (B, c, H/s, W/s) on the grouping grid."""
        if self.instance_stride == self.stride:
            return maps
        if self.instance_stride < self.stride:
            step = self.stride // self.instance_stride
            return maps[:, :, step // 2::step, step // 2::step]
        return upsample(maps, self.instance_stride // self.stride)

    def _find_centers(self, heat: torch.Tensor, threshold: torch.Tensor
                      ) -> Tuple[torch.Tensor, ...]:
        """(B, 1, h, w) grid heatmap -> scores, valid, y, x, flat cell index, each (B, K)
        (y, x from the middle cell and 0 where invalid; the index is int64, in range)."""
        batch = heat.shape[0]
        pooled = F.max_pool2d(heat, self.nms_kernel, stride=1, padding=self.nms_kernel // 2)
        keep = (heat == pooled) & (heat > threshold)
        masked = torch.where(keep, heat, float('-inf'))
        masked = masked.reshape(batch, -1)
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
            scores, index = torch.topk(masked, self.slots, dim=1)
        else:
            # ONNX TopK breaks ties by lower index; torch.topk promises no order, a stable
            # sort does, so eager and exported graphs agree exactly.
            scores, index = torch.sort(masked, dim=1, descending=True, stable=True)
            scores, index = scores[:, :self.slots], index[:, :self.slots]
        valid = scores > threshold
        center_y = torch.where(valid, self.grid_y[index], 0.0)
        center_x = torch.where(valid, self.grid_x[index], 0.0)
        return scores, valid, center_y, center_x, index

    def _thing_pixels(self, semantic: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """bool (B, H, W): pixels whose class is a thing class."""
        if self.thing_range is not None:  # two compares beat a per-pixel Gather in ORT
            return (semantic >= self.first_thing) & (semantic <= self.last_thing)
        return self.is_thing[best] > 0

    def _upsample(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, h*w) -> (B, h*s, w*s), each cell repeated s x s."""
        batch = grid.shape[0]
        # expand_as() a tensor of the target shape exports to one Expand with a constant shape;
        # expand(), repeat() and broadcast_to() add shape arithmetic (ConstantOfShape, If) to
        # the graph and a broadcasting Mul by ones is several times slower in ONNX Runtime.
        target = torch.empty((batch, self.grid_height, self.stride, self.grid_width,
                              self.stride), dtype=grid.dtype, device=grid.device)
        grid = grid.reshape(batch, self.grid_height, 1, self.grid_width, 1).expand_as(target)
        return grid.reshape(batch, self.height, self.width)


def _rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(R, D) table, int (B, N) row indices -> (B, N, D) rows (one Gather)."""
    batch, count = index.shape
    return torch.index_select(table, 0, index.reshape(-1)).reshape(batch, count, -1)
