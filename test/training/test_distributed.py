"""Data-parallel training under torchrun: 2 gloo processes on the CPU equal 1 process."""

import dataclasses
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip('torch')

from seg_perception.training.distributed import GlobalBatchSampler  # noqa: E402
from seg_perception.training.loop import train  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ddp_worker import flat_weights, tiny_config  # noqa: E402

#: Weights of 2 processes vs 1 (float64; measured up to 1.6e-13 while they move by ~1.5).
TOLERANCE = 1e-9


def torchrun(out: str, epochs: int, nproc: int, *extra: str) -> None:
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={nproc}', os.path.join(HERE, 'ddp_worker.py'), out,
               str(epochs), *extra]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def single_process(out: str, epochs: int, resume: bool = False):
    """The worker's run in this process, without dropout and in float64 as there."""
    steps = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Dropout2d, 'forward', lambda self, x: x)
        torch.set_default_dtype(torch.float64)
        try:
            _, result = train(tiny_config(epochs), out, resume=resume, log=lambda *_: None,
                              on_step=lambda iteration, net: steps.append(flat_weights(net)))
        finally:
            torch.set_default_dtype(torch.float32)
    return steps, result


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    out = str(tmp_path_factory.mktemp('ddp'))
    torchrun(out, 2, 2)
    ranks = [torch.load(os.path.join(out, f'steps_rank{r}.pt')) for r in range(2)]
    single_steps, single_result = single_process(os.path.join(out, 'single'), 2)
    return out, ranks, single_steps, single_result


def test_two_ranks_hold_identical_weights_after_every_step(runs):
    _, ranks, _, _ = runs
    assert len(ranks[0]['steps']) == len(ranks[1]['steps']) == 4  # 2 epochs x 2 steps
    for first, second in zip(ranks[0]['steps'], ranks[1]['steps']):
        assert torch.equal(first, second)


def test_two_processes_equal_one_with_the_same_global_batch(runs):
    _, ranks, single_steps, _ = runs
    assert len(single_steps) == 4
    for ddp, single in zip(ranks[0]['steps'], single_steps):
        assert float((ddp - single).abs().max()) < TOLERANCE
    assert float((single_steps[3] - single_steps[0]).abs().max()) > 100 * TOLERANCE
    assert ranks[0]['validation'] == dataclasses.asdict(runs[3])


def test_only_rank_0_logs_and_writes(runs):
    out, ranks, _, _ = runs
    assert sorted(os.listdir(os.path.join(out, 'run'))) == ['checkpoints', 'model',
                                                            'training_log.csv']
    assert not os.path.exists(os.path.join(out, 'rank1'))
    assert ranks[0]['lines'] and any('2 processes (gloo)' in line for line in ranks[0]['lines'])
    assert ranks[1]['lines'] == []


def test_validation_is_rank_0_s_on_every_rank_and_equals_one_process(runs, tmp_path):
    from seg_perception.labels import cityscapes
    from seg_perception.models import build_model
    from seg_perception.training.checkpoints import load_checkpoint
    from seg_perception.training.frames import FrameSource
    from seg_perception.training.validation import make_manifest, validate
    out, ranks, _, _ = runs
    assert ranks[0]['validation'] == ranks[1]['validation']
    config = tiny_config(2)
    labels = cityscapes()
    network = build_model('enet', num_classes=labels.num_classes, panoptic=True)
    network.load_state_dict(load_checkpoint(os.path.join(out, 'run', 'checkpoints',
                                                         'last.pt'))['model'])
    source = FrameSource('synthetic', 'val', 128, 64, config.seed, config.val_frames, labels)
    alone = validate(network, make_manifest(config, labels), [source[0], source[1]], 'cpu')
    assert dataclasses.asdict(alone) == ranks[0]['validation']


def test_resume_across_process_counts(runs, tmp_path):
    """A third epoch from the 2-process checkpoint in 1 process, and from the 1-process
    checkpoint in 2 processes, both equal 1 process resuming its own checkpoint."""
    import shutil
    out = runs[0]
    reference = str(tmp_path / 'reference')
    shutil.copytree(os.path.join(out, 'single'), reference)
    expected, _ = single_process(reference, 3, resume=True)
    from_ddp = str(tmp_path / 'from_ddp')
    shutil.copytree(os.path.join(out, 'run'), from_ddp)
    steps, _ = single_process(from_ddp, 3, resume=True)
    two = str(tmp_path / 'two')
    shutil.copytree(os.path.join(out, 'single'), os.path.join(two, 'run'))
    torchrun(two, 3, 2, '--resume')
    in_two = torch.load(os.path.join(two, 'steps_rank0.pt'))['steps']
    assert len(expected) == len(steps) == len(in_two) == 2  # the third epoch only
    for reference_step, mine, ddp in zip(expected, steps, in_two):
        assert float((mine - reference_step).abs().max()) < TOLERANCE
        assert float((ddp - reference_step).abs().max()) < TOLERANCE


def test_the_sampler_keeps_the_single_process_order_and_splits_global_batches():
    loader = torch.utils.data.DataLoader(list(range(10)), batch_size=4, shuffle=True,
                                         drop_last=True,
                                         generator=torch.Generator().manual_seed(7))
    expected = [batch.tolist() for batch in loader]
    alone = list(GlobalBatchSampler(10, 4, 7))
    assert [alone[:4], alone[4:]] == expected
    shares = [list(GlobalBatchSampler(10, 4, 7, rank, 2)) for rank in range(2)]
    assert [shares[0][:2] + shares[1][:2], shares[0][2:] + shares[1][2:]] == expected
    assert len(GlobalBatchSampler(10, 4, 7, 1, 2)) == 4


def test_nproc_refuses_a_global_batch_it_cannot_split(capsys):
    from seg_perception.cli import main
    assert main(['train', '--model', 'enet', '--out', 'unused', '--batch-size', '3',
                 '--nproc', '2']) == 2
    assert 'must be a multiple of --nproc 2' in capsys.readouterr().err
