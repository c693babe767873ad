"""Shared pytest configuration."""

import os

import pytest

# Keep torch / onnxruntime from oversubscribing the small CI machine.
os.environ.setdefault('OMP_NUM_THREADS', '2')


def _tiny_side(size_divisor: int) -> int:
    return max(32, size_divisor)


@pytest.fixture(scope='session')
def exported_package(tmp_path_factory):
    """Factory of small exported model packages, cached for the whole test session.

    ``exported_package(name='enet', task='semantic', height=None, width=None, batch=1,
    weights=True) -> package_dir``: a randomly initialised (``torch.manual_seed(0)``)
    registered network with 19 Cityscapes classes, exported with ``export_model_package``.
    Default size: the smallest multiple of the model's size_divisor >= 32 high, twice as wide.
    The same arguments return the same directory: treat it as read-only (copy it with
    ``shutil.copytree`` before corrupting or editing anything).
    """
    cache = {}
    root = tmp_path_factory.mktemp('exported_packages')

    def make(name='enet', task='semantic', height=None, width=None, batch=1, weights=True):
        import torch

        from seg_perception.export.onnx_export import export_model_package
        from seg_perception.manifest import ModelManifest
        from seg_perception.models import build_model, get_model_spec
        side = _tiny_side(get_model_spec(name).size_divisor)
        height = height or side
        width = width or 2 * side
        key = (name, task, height, width, batch, bool(weights))
        if key not in cache:
            out_dir = str(root / f'{name}_{task}_{height}x{width}_b{batch}_{int(bool(weights))}')
            with torch.random.fork_rng():
                torch.manual_seed(0)
                network = build_model(name, num_classes=19, panoptic=task == 'panoptic')
            manifest = ModelManifest(name=f'{name}_{task}', architecture=name, task=task,
                                     input_height=height, input_width=width, batch=batch,
                                     info={'weights': 'random initialisation (test fixture)'})
            export_model_package(network, manifest, out_dir, save_weights=bool(weights))
            cache[key] = out_dir
        return cache[key]

    return make


@pytest.fixture(scope='module')
def torch_one_thread():
    """Torch on one thread for a test module (the small CI machine has 2 cores); restored
    afterwards. Use with ``pytestmark = pytest.mark.usefixtures('torch_one_thread')``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def lively_enet_panoptic(tmp_path_factory):
    """A 64x128 ENet panoptic package whose random heads find instances
    (``seg_test_models.export_lively_package``), exported once per session; read-only."""
    from seg_test_models import export_lively_package
    return export_lively_package('enet', 'panoptic', 64, 128,
                                 str(tmp_path_factory.mktemp('lively_enet_panoptic')))


@pytest.fixture
def writable_lively_enet_panoptic(lively_enet_panoptic, tmp_path):
    """A writable copy of ``lively_enet_panoptic`` (engines are cached next to a package)."""
    import shutil
    return shutil.copytree(lively_enet_panoptic, str(tmp_path / 'enet'))
