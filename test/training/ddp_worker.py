"""One rank of a data-parallel test run, started by ``python -m torch.distributed.run``.

Usage: ``ddp_worker.py OUT EPOCHS [--resume]``. Trains the tiny configuration of
``test_distributed`` into ``OUT/run`` (rank 0; any other rank gets ``OUT/rank<r>``, so that
what it writes shows; with --resume every rank reads ``OUT/run``) and saves
``OUT/steps_rank<r>.pt``: the flattened weights after every step, the lines it logged and
its validation result.

Dropout is switched off (``no_dropout``): its random masks are drawn per process, so with it
N processes train an equivalent run, not the same one. The network runs in float64: in
float32 the batch sums of 2 processes and of 1 differ in their last bits, and AdamW's first
steps (update ~ lr * sign(gradient)) turn that noise in near-zero gradients into full
+-lr steps on a few weights, which no tolerance on the weights could tell from a bug.
"""

import dataclasses
import os
import sys

import torch

from seg_perception.training.config import TrainConfig
from seg_perception.training.loop import train


def tiny_config(epochs: int) -> TrainConfig:
    """Four frames of 64x128, global batch 4 (2 per process with two), BatchNorm synced."""
    return TrainConfig(model='enet', task='panoptic', height=64, width=128, epochs=epochs,
                       batch_size=4, train_frames=8, val_frames=2, workers=0, device='cpu',
                       seed=5, hard_pixel_ratio=1.0, mixed_precision='off', min_scale=1.0,
                       max_scale=1.0)


def no_dropout() -> None:
    """Make ``Dropout2d`` (ENet's bottlenecks) the identity in this process."""
    torch.nn.Dropout2d.forward = lambda self, x: x


def exact_arithmetic() -> None:
    """This process's runs without dropout and in float64 (module docstring)."""
    torch.set_num_threads(1)
    no_dropout()
    torch.set_default_dtype(torch.float64)


def flat_weights(network) -> torch.Tensor:
    return torch.cat([value.detach().flatten().double().clone()
                      for value in network.state_dict().values()
                      if value.is_floating_point()])


def main() -> None:
    out, epochs, resume = sys.argv[1], int(sys.argv[2]), '--resume' in sys.argv
    exact_arithmetic()
    rank = int(os.environ['RANK'])
    steps, lines = [], []
    # Resuming, every rank reads OUT/run/checkpoints/last.pt (a shared directory).
    run_dir = os.path.join(out, 'run' if rank == 0 or resume else f'rank{rank}')
    _, result = train(tiny_config(epochs), run_dir, resume=resume,
                      log=lambda *words: lines.append(' '.join(map(str, words))),
                      on_step=lambda iteration, net: steps.append(flat_weights(net)))
    torch.save({'steps': steps, 'lines': lines, 'validation': dataclasses.asdict(result)},
               os.path.join(out, f'steps_rank{rank}.pt'))


if __name__ == '__main__':
    main()
