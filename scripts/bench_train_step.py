#!/usr/bin/env python3
"""Seconds per training step of a panoptic network, in the default and channels-last layouts.

One step is what ``seg-perception train`` does per batch: forward under bfloat16 autocast
(when ``train.use_bfloat16_autocast`` says so for the device), a loss, backward and an AdamW
step. The loss here is the mean of every head (the speed of the real Panoptic-DeepLab loss
does not depend on the layout). Both layouts run alternately, ``--steps`` each after one
untimed warm-up step, on random crops; the median decides. Example (one core, as the CPU
zoo training runs):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_train_step.py --model enet
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='enet', help='registered architecture')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--crop', default='512x256', metavar='WxH')
    parser.add_argument('--steps', type=int, default=4, help='timed steps per layout')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    args = parser.parse_args()
    import torch

    from seg_perception.models import build_model
    from seg_perception.training.device import use_bfloat16_autocast
    width, height = (int(v) for v in args.crop.lower().split('x'))
    amp = use_bfloat16_autocast('auto', args.device)
    layouts = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}
    runs = {}
    for name, layout in layouts.items():
        torch.manual_seed(0)
        network = build_model(args.model, num_classes=19, panoptic=True).to(args.device)
        network = network.to(memory_format=layout).train()
        images = torch.randn(args.batch, 3, height, width, device=args.device)
        images = images.contiguous(memory_format=layout)
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
        runs[name] = (network, images, optimizer)
    times = {name: [] for name in layouts}
    for step in range(args.steps + 1):
        for name, (network, images, optimizer) in runs.items():
            if args.device == 'cuda':
                torch.cuda.synchronize()
            started = time.perf_counter()
            with torch.autocast(device_type=args.device, dtype=torch.bfloat16, enabled=amp):
                outputs = network(images)
            loss = sum(value.float().mean() for value in outputs.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if args.device == 'cuda':
                torch.cuda.synchronize()
            if step:  # the first step is a warm-up
                times[name].append(time.perf_counter() - started)
    print(f'{args.model} panoptic, batch {args.batch} of {width}x{height}, {args.device}, '
          f'{torch.get_num_threads()} threads, bfloat16 autocast {"on" if amp else "off"}')
    for name, values in times.items():
        print(f'  {name:<14} median {statistics.median(values):.2f} s/step  '
              f'({" ".join(f"{v:.2f}" for v in values)})')
    ratio = statistics.median(times['contiguous']) / statistics.median(times['channels_last'])
    print(f'  channels_last speed-up: {ratio:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
