"""Data-parallel training under ``torchrun``: process group, sharded batches, synced BatchNorm.

``torchrun`` (``python -m torch.distributed.run``) starts one process per GPU (or CPU
worker) and sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; ``Distributed.from_environment``
joins them with NCCL on CUDA and gloo on the CPU. ``TrainConfig.batch_size`` is the *global*
batch: each process takes a contiguous ``batch_size / world_size`` slice of every global batch
(``GlobalBatchSampler``), BatchNorm statistics are taken over the whole global batch
(``torch.nn.SyncBatchNorm`` on CUDA, ``GlooSyncBatchNorm`` on the CPU, whose BatchNorm torch
does not sync), and the loss normalisers are averaged over the processes
(``Distributed.mean_counts``), so N processes take the same steps as one process with the
same configuration, up to float rounding. One process is the same code with every
collective a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Dict, Iterator

from .config import TrainingError


@dataclass
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when not under torchrun).

    Attributes:
        rank, world_size, local_rank: As ``torchrun`` sets them.
        backend: ``nccl`` or ``gloo``; empty for one process.
        owns_group: Whether ``from_environment`` created the process group (and
            ``shutdown`` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ''
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """Whether this process is in a process group (under torchrun, even a group of 1)."""
        return bool(self.backend)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str) -> 'Distributed':
        """Join the ``torchrun`` job described by the environment (or run alone).

        Under torchrun (``RANK`` and ``MASTER_ADDR`` set) a job of one process still joins a
        group and trains under ``DistributedDataParallel``: that checks the NCCL path on a
        one-GPU machine (``scripts/gpu_checks.py``).
        """
        world_size = int(os.environ.get('WORLD_SIZE', '1') or 1)
        if world_size <= 1 and not ('RANK' in os.environ and 'MASTER_ADDR' in os.environ):
            return cls()
        import torch
        import torch.distributed as dist
        rank = int(os.environ.get('RANK', '0'))
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        backend = 'nccl' if device == 'cuda' else 'gloo'
        if device == 'cuda':
            if local_rank >= torch.cuda.device_count():
                raise TrainingError(f'local rank {local_rank} has no GPU: torch sees '
                                    f'{torch.cuda.device_count()}; lower --nproc_per_node')
            torch.cuda.set_device(local_rank)
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group(backend=backend)
        return cls(rank=rank, world_size=world_size, local_rank=local_rank,
                   backend=dist.get_backend(), owns_group=owns)

    def shutdown(self) -> None:
        if self.owns_group:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False

    def per_process_batch(self, batch_size: int) -> int:
        if batch_size % self.world_size:
            raise TrainingError(f'--batch-size {batch_size} is the global batch and must be a '
                                f'multiple of the {self.world_size} processes')
        return batch_size // self.world_size

    def mean_counts(self, counts):
        """The mean over the processes of a tensor of loss normalisers (pixel counts)."""
        if not self.enabled:
            return counts
        import torch.distributed as dist
        counts = counts.detach().clone()
        dist.all_reduce(counts)
        return counts / self.world_size

    def mean_parts(self, parts: Dict[str, float]) -> Dict[str, float]:
        """Loss parts averaged over the processes: the global batch's loss, on every rank."""
        if not self.enabled:
            return parts
        import torch
        import torch.distributed as dist
        keys = sorted(parts)
        values = torch.tensor([parts[key] for key in keys], dtype=torch.float64)
        dist.all_reduce(values)
        return {key: float(value) / self.world_size for key, value in zip(keys, values)}

    def max_value(self, value: float) -> float:
        """The largest ``value`` over the processes (rank-independent time decisions)."""
        if not self.enabled:
            return value
        import torch
        import torch.distributed as dist
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor[0])

    def broadcast(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.enabled:
            return value
        import torch.distributed as dist
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist
            dist.barrier()

    def wrap(self, network, device: str):
        """``network`` in ``DistributedDataParallel`` (unchanged for one process)."""
        if not self.enabled:
            return network
        from torch.nn.parallel import DistributedDataParallel
        if device == 'cuda':
            return DistributedDataParallel(network, device_ids=[self.local_rank])
        return DistributedDataParallel(network)


def _gloo_sync_batchnorm_class():
    import torch
    import torch.distributed as dist

    class AllReduceSum(torch.autograd.Function):
        """Sum over the processes; the gradient of every copy is the sum of theirs."""

        @staticmethod
        def forward(ctx, tensor):
            tensor = tensor.clone()
            dist.all_reduce(tensor)
            return tensor

        @staticmethod
        def backward(ctx, grad):
            grad = grad.clone()
            dist.all_reduce(grad)
            return grad

    all_reduce = AllReduceSum.apply

    class GlooSyncBatchNorm(torch.nn.BatchNorm2d):
        """BatchNorm2d whose training statistics cover every process's batch, on any device.

        ``torch.nn.SyncBatchNorm`` refuses CPU tensors; this one all-reduces per-channel
        sums, then squared deviations (differentiably), so gradients flow through the global
        statistics as in one process. Same parameters and buffers as ``BatchNorm2d``.
        """

        def forward(self, x):
            if not (self.training and dist.is_available() and dist.is_initialized()
                    and dist.get_world_size() > 1):
                return super().forward(x)
            channels = x.shape[1]
            values = x if x.dtype == torch.float64 else x.float()
            count = torch.tensor([values.numel() / channels], dtype=values.dtype,
                                 device=values.device)
            # Two passes (sum, then squared deviations) as BatchNorm itself computes them.
            stats = all_reduce(torch.cat([values.sum(dim=(0, 2, 3)), count]))
            total = stats[-1]
            mean = stats[:channels] / total
            centred = values - mean.view(1, channels, 1, 1)
            var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / total
            if self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    momentum = self.momentum if self.momentum is not None else \
                        1.0 / float(self.num_batches_tracked)
                    unbiased = var * total / (total - 1.0).clamp(min=1.0)
                    self.running_mean.mul_(1.0 - momentum).add_(momentum * mean.detach())
                    self.running_var.mul_(1.0 - momentum).add_(momentum * unbiased.detach())
            shape = (1, channels, 1, 1)
            out = centred * torch.rsqrt(var.view(shape) + self.eps)
            if self.affine:
                out = out * self.weight.view(shape) + self.bias.view(shape)
            return out.to(x.dtype)

    return GlooSyncBatchNorm


def convert_sync_batchnorm(network, device: str):
    """Swap every ``BatchNorm2d`` for its synced form (same parameter objects and buffers)."""
    import torch
    if device == 'cuda':
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
    synced = _gloo_sync_batchnorm_class()

    def convert(module):
        if type(module) is torch.nn.BatchNorm2d:
            replacement = synced(module.num_features, module.eps, module.momentum,
                                 module.affine, module.track_running_stats)
            if module.affine:
                replacement.weight = module.weight
                replacement.bias = module.bias
            for name in ('running_mean', 'running_var', 'num_batches_tracked'):
                setattr(replacement, name, getattr(module, name))
            replacement.train(module.training)
            return replacement
        for name, child in module.named_children():
            module.add_module(name, convert(child))
        return module

    return convert(network)


class GlobalBatchSampler:
    """Indices of one epoch for one process: its contiguous slice of every global batch.

    The global order is the permutation a ``DataLoader(shuffle=True,
    generator=torch.Generator().manual_seed(seed))`` draws (one draw for its worker seed,
    then ``randperm``), so a single process keeps the order it had before this sampler
    existed; global batch k is ``order[k*B:(k+1)*B]`` for any number of processes, and rank r
    takes the r-th of its ``world_size`` equal slices. Incomplete global batches are dropped.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return (self.size // self.batch_size) * (self.batch_size // self.world_size)

    def __iter__(self) -> Iterator[int]:
        import torch
        generator = torch.Generator().manual_seed(self.seed)
        torch.empty((), dtype=torch.int64).random_(generator=generator)  # the worker seed draw
        order = torch.randperm(self.size, generator=generator).tolist()
        share = self.batch_size // self.world_size
        for start in range(0, (self.size // self.batch_size) * self.batch_size,
                           self.batch_size):
            first = start + self.rank * share
            yield from order[first:first + share]
