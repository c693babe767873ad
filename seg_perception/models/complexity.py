"""Parameter counts and GFLOPs of the registered models (the README table).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: it counts convolutions,
transposed convolutions and matrix products as 2 x multiply-accumulates and ignores
element-wise ops (batch norm, activations, adds, pooling, resize). So ``count_gflops``
returns **FLOPs = 2 x MACs**, in units of 1e9. Papers often quote MACs as "FLOPs"; divide
by two to compare with those.

The table builds every model on the ``meta`` device, so no weights are allocated and no
arithmetic is done: the whole table takes seconds even for ResNet-50 at 1024x512.

Run ``python -m seg_perception.models.complexity [--height H --width W]`` to print it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from torch import nn

TASKS = ('semantic', 'panoptic')


@dataclass(frozen=True)
class ComplexityRow:
    """One README table row.

    Attributes:
        name: Registry name.
        task: ``semantic`` or ``panoptic`` (built with ``panoptic=True``).
        parameters: Trainable and frozen parameters.
        gflops: 1e9 FLOPs (2 x MACs) of one forward pass at ``height`` x ``width``.
        height, width: Input size the FLOPs were counted at.
    """

    name: str
    task: str
    parameters: int
    gflops: float
    height: int
    width: int


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (elements) of ``model``."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_gflops(model: nn.Module, height: int, width: int, batch: int = 1) -> float:
    """FLOPs (2 x multiply-accumulates) / 1e9 of one forward pass at (batch, 3, height, width).

    Runs the model in eval mode under ``torch.no_grad`` on the device of its parameters
    (``meta`` models cost nothing), then restores its training flag.
    """
    from torch.utils.flop_counter import FlopCounterMode
    if height <= 0 or width <= 0 or batch <= 0:
        raise ValueError(f'height {height}, width {width} and batch {batch} must be positive')
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device('cpu')
    images = torch.zeros(batch, 3, height, width, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9


def complexity_table(height: int = 512, width: int = 1024, num_classes: int = 19,
                     names: Optional[Sequence[str]] = None,
                     tasks: Sequence[str] = TASKS) -> List[ComplexityRow]:
    """Parameters and GFLOPs at ``height`` x ``width`` of every registered model and task.

    Args:
        height, width: Input size; must be a multiple of each model's size_divisor.
        num_classes: Semantic classes (19 for Cityscapes).
        names: Registry names (default: all of ``list_models()``).
        tasks: Any of ``semantic``, ``panoptic``.
    """
    from .registry import build_model, get_model_spec, list_models
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f'task {task!r} is not one of {", ".join(TASKS)}')
    rows = []
    for name in names if names is not None else list_models():
        divisor = get_model_spec(name).size_divisor
        if height % divisor or width % divisor:
            raise ValueError(
                f'{name}: {width}x{height} (WxH) is not a multiple of its size_divisor {divisor}')
        for task in tasks:
            with torch.device('meta'):
                model = build_model(name, num_classes=num_classes, panoptic=task == 'panoptic')
            rows.append(ComplexityRow(name, task, count_parameters(model),
                                      count_gflops(model, height, width), height, width))
    return rows


def format_markdown(rows: Sequence[ComplexityRow]) -> str:
    """Markdown table: model | task | params (M) | GFLOPs @WxH."""
    if not rows:
        raise ValueError('no rows to format')
    size = f'{rows[0].width}x{rows[0].height}'
    lines = [f'| model | task | params (M) | GFLOPs @{size} |', '|---|---|---:|---:|']
    for row in rows:
        lines.append(f'| {row.name} | {row.task} | {row.parameters / 1e6:.2f} | '
                     f'{row.gflops:.1f} |')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--height', type=int, default=512)
    parser.add_argument('--width', type=int, default=1024)
    parser.add_argument('--num-classes', type=int, default=19)
    args = parser.parse_args(argv)
    print(format_markdown(complexity_table(args.height, args.width, args.num_classes)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
