"""Step 1 of the post-processing (class and confidence per pixel) in the graph, for the two
layouts the network can hand over.

* Plain logits (B, C, H, W): ``ArgMax`` over the channel axis, the peak gathered at it.
* Packed logits (B, H/2 * W/2 * 4, C) from ``models.layers.packed_transposed_conv`` (ENet's
  final 2x2 stride-2 transposed conv kept as a matmul): the reductions run over the last,
  contiguous axis and only the per-pixel results (int class, float confidence) are moved to
  their place in the (H, W) image.

For plain logits the sum over classes of ``exp(logit - peak)`` is a MatMul with a ones
vector: ONNX Runtime's ``ReduceSum`` over a non-innermost axis is ~7x slower than the MatMul
for the same 19 x H x W floats; for packed logits a Softmax over the last axis does it
all. The confidence nodes feed only the ``confidence`` output, so a graph pruned to the
outputs a caller needs loses them all.
"""

from __future__ import annotations

from typing import Tuple

import torch


def plain_class_and_confidence(logits: torch.Tensor
                               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) float logits -> best class int64 (B, H, W), confidence float (B, H, W)."""
    batch, classes, height, width = logits.shape
    best = torch.argmax(logits, dim=1, keepdim=True)
    # Gathering the peak at the argmax is cheaper than a second reduction over classes.
    peak = torch.gather(logits, 1, best)
    exponentials = torch.exp(logits - peak).reshape(batch, classes, height * width)
    ones = logits.new_ones((1, classes))
    total = torch.matmul(ones, exponentials).reshape(batch, height, width)
    return best.squeeze(1), _inverse(total)


def packed_class_and_confidence(packed: torch.Tensor, height: int, width: int
                                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, H/2 * W/2 * 4, C) packed logits -> best class int64 (B, H, W), confidence float
    (B, H, W) (see the module docstring)."""
    best = torch.argmax(packed, dim=2, keepdim=True)
    # Over the contiguous last axis ONNX Runtime's Softmax is one fused kernel (max, exp,
    # sum, scale); its largest value is 1 / sum(exp(logit - peak)), 25 % faster here than
    # ReduceMax, Sub, Exp, MatMul and Div as separate passes.
    confidence = torch.amax(torch.softmax(packed, dim=2), dim=2)
    return unpack_blocks(best, height, width), unpack_blocks(confidence, height, width)


def _inverse(total: torch.Tensor) -> torch.Tensor:
    # A Div by a constant one: ``1.0 / x`` exports as Reciprocal, outside our op set.
    return torch.div(torch.ones((), dtype=total.dtype, device=total.device), total)


def unpack_blocks(values: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H/2 * W/2 * 4[, 1]) per-pixel values in 2x2-block order -> (B, H, W)."""
    batch = values.shape[0]
    blocks = values.reshape(batch, height // 2, width // 2, 2, 2)
    return blocks.permute(0, 1, 3, 2, 4).reshape(batch, height, width)


def check_packed_shape(packed: torch.Tensor, classes: int, height: int, width: int) -> None:
    """Raise ValueError unless ``packed`` is (B, H/2 * W/2 * 4, C)."""
    rows = (height // 2) * (width // 2) * 4
    if packed.dim() != 3 or tuple(packed.shape[1:]) != (rows, classes) \
            or height % 2 or width % 2:
        raise ValueError(f'packed semantic logits must be (B, {rows}, {classes}) for a '
                         f'{width}x{height} network, got {tuple(packed.shape)}')
