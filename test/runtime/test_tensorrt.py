"""TensorRT pieces: calibration images, availability, options, CLI; real builds where possible.

Everything above the ``tensorrt`` / ``gpu`` marked tests runs anywhere (no TensorRT here).
The marked tests build and run real engines / CUDA buffers and skip with the reason
``tensorrt_available()`` or cuda-python gives where those are missing.
"""

import os

import numpy as np
import pytest

from seg_perception import cli
from seg_perception.manifest import ModelManifest
from seg_perception.runtime import calibration
from seg_perception.runtime.base import BackendError, BackendUnavailable
from seg_perception.runtime.calibration import (
    calibration_batches,
    calibration_cache_path,
    calibration_set_sha256,
    CalibrationError,
    list_calibration_images,
)
from seg_perception.runtime.engine_options import (
    BuildOptions,
    make_engine_key,
    needs_strong_typing,
    Platform,
    POSTPROCESS_LAYERS,
)
from seg_perception.runtime.layer_precision import keep_layers_in_fp32, layer_matches
from seg_perception.runtime.tensorrt_backend import tensorrt_available, TensorRTBackend

cv2 = pytest.importorskip('cv2')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TRT_OK, TRT_REASON = tensorrt_available()
needs_tensorrt = pytest.mark.skipif(not TRT_OK, reason=f'TensorRT unavailable: {TRT_REASON}')
PLATFORM = Platform('10.3.0', 'Orin', '8.7', strongly_typed=False)


def _write_image(path, rgb, size=(40, 30)):
    """Write a solid ``rgb`` colour image of ``size`` (w, h) as PNG/JPEG (OpenCV wants BGR)."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = rgb[::-1]
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def calib_dir(tmp_path):
    folder = tmp_path / 'calib'
    folder.mkdir()
    _write_image(folder / 'a_red.png', (255, 0, 0))
    _write_image(folder / 'b_green.jpg', (0, 255, 0), size=(80, 20))
    _write_image(folder / 'c_blue.JPEG', (0, 0, 255), size=(16, 16))
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'sub.png').mkdir()           # a directory with an image name is skipped
    return folder


def test_list_calibration_images(calib_dir):
    names = [os.path.basename(p) for p in list_calibration_images(str(calib_dir))]
    assert names == ['a_red.png', 'b_green.jpg', 'c_blue.JPEG']


def test_batches_are_rgb_float32_chw_at_network_size(calib_dir):
    batches = list(calibration_batches(str(calib_dir), batch=2, height=8, width=12))
    # 3 images in batches of 2: the last batch is filled up from the start of the set.
    assert len(batches) == 2
    for batch in batches:
        assert batch.shape == (2, 3, 8, 12) and batch.dtype == np.float32
    red, green = batches[0]
    blue, red_again = batches[1]
    np.testing.assert_array_equal(red[0], 255.0)
    np.testing.assert_array_equal(red[1:], 0.0)
    assert green[1].min() >= 250 and green[0].max() <= 5 and green[2].max() <= 5  # JPEG
    assert blue[2].min() >= 250 and blue[:2].max() <= 5
    np.testing.assert_array_equal(red_again, red)
    assert batches[0] is not batches[1]


def test_max_images(calib_dir):
    batches = list(calibration_batches(str(calib_dir), batch=1, height=4, width=4,
                                       max_images=2))
    assert len(batches) == 2
    with pytest.raises(CalibrationError, match='max_images'):
        list(calibration_batches(str(calib_dir), 1, 4, 4, max_images=0))


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(CalibrationError, match='does not exist'):
        list_calibration_images(str(tmp_path / 'nope'))
    (tmp_path / 'readme.md').write_text('x')
    with pytest.raises(CalibrationError, match=f'{tmp_path} holds no images'):
        list(calibration_batches(str(tmp_path), 1, 4, 4))


def test_unreadable_image_is_named(calib_dir):
    (calib_dir / 'broken.png').write_bytes(b'\x89PNG but not really')
    with pytest.raises(CalibrationError, match='broken.png cannot be read'):
        list(calibration_batches(str(calib_dir), 1, 4, 4))


def test_calibration_set_digest_follows_names_and_contents(calib_dir):
    first = calibration_set_sha256(str(calib_dir))
    assert calibration_set_sha256(str(calib_dir)) == first
    _write_image(calib_dir / 'a_red.png', (254, 0, 0))
    second = calibration_set_sha256(str(calib_dir))
    assert second != first
    os.rename(calib_dir / 'a_red.png', calib_dir / 'z_red.png')
    assert calibration_set_sha256(str(calib_dir)) != second


def test_calibration_cache_next_to_engine():
    path = calibration_cache_path('/pkg/model.int8.b1.engine', 'abcdef0123456789')
    assert path == '/pkg/model.int8.b1.abcdef012345.calib'


def test_build_options_validation(calib_dir):
    with pytest.raises(ValueError, match='fp32, fp16, int8'):
        BuildOptions(precision='fp8')
    with pytest.raises(ValueError, match='--calib-images'):
        BuildOptions(precision='int8')
    with pytest.raises(ValueError, match='workspace'):
        BuildOptions(workspace_mb=0)
    with pytest.raises(ValueError, match='min <= opt <= max'):
        BuildOptions(batch_profile=(2, 1, 4))
    BuildOptions(precision='int8', calib_images_dir=str(calib_dir))


def test_engine_key_from_manifest():
    semantic = ModelManifest(name='m', architecture='enet', task='semantic', input_height=64,
                             input_width=128, batch=2)
    key = make_engine_key(semantic, 'a' * 64, PLATFORM, BuildOptions(), 'c' * 64)
    assert key.input_shapes == (('image', (2, 3, 64, 128)),)
    assert key.batch_profile == (2, 2, 2) and key.precision == 'fp16'
    assert key.calibration_sha256 == ''        # only INT8 engines depend on the images
    panoptic = ModelManifest(name='m', architecture='enet', task='panoptic', input_height=64,
                             input_width=128)
    options = BuildOptions(precision='int8', calib_images_dir='/x', fp32_layers=('head',),
                           batch_profile=(1, 2, 4))
    key = make_engine_key(panoptic, 'a' * 64, PLATFORM, options, 'c' * 64)
    assert dict(key.input_shapes) == {'image': (2, 3, 64, 128), 'center_threshold': (1,)}
    # The post-processing stays FP32 in reduced-precision builds (grouping distances), and
    # that is part of the key: an engine built before that rule is rebuilt.
    assert key.calibration_sha256 == 'c' * 64
    assert key.fp32_layers == ('head', POSTPROCESS_LAYERS)
    assert key.gpu_name == 'Orin' and key.tensorrt_version == '10.3.0'
    fp32 = make_engine_key(panoptic, 'a' * 64, PLATFORM, BuildOptions(precision='fp32'))
    assert fp32.fp32_layers == ()


def test_reduced_precision_builds_keep_the_postprocessing_in_fp32():
    assert BuildOptions(precision='fp16').fp32_patterns() == (POSTPROCESS_LAYERS,)
    assert BuildOptions(precision='fp16', fp32_layers=('/head/', POSTPROCESS_LAYERS)
                        ).fp32_patterns() == ('/head/', POSTPROCESS_LAYERS)
    assert BuildOptions(precision='fp32', fp32_layers=('/head/',)).fp32_patterns() == ('/head/',)


def test_postprocessing_nodes_carry_the_fp32_prefix(tmp_path):
    """Every grouping / argmax ONNX node carries the prefix the FP32 rule matches, and no
    network node does. (That TensorRT's layers keep those names is checked on TensorRT's
    own parser below, and on a parser-shaped network in test_engine_build.py.)"""
    onnx = pytest.importorskip('onnx')
    from seg_test_models import export_lively_package
    export_lively_package('enet', 'panoptic', 64, 128, str(tmp_path / 'pkg'))
    model = onnx.load(str(tmp_path / 'pkg' / 'model.onnx'))
    by_type = {}
    for node in model.graph.node:
        by_type.setdefault(node.op_type, []).append(node.name)
    for op_type in ('MatMul', 'ArgMin', 'ArgMax', 'TopK', 'Softmax', 'ReduceMax'):
        # ENet's packed full conv is the network's one MatMul (FP16 is right for it).
        names = [name for name in by_type[op_type] if name != '/network/MatMul']
        assert names and all(name.startswith(POSTPROCESS_LAYERS) for name in names), op_type
    assert not any(name.startswith(POSTPROCESS_LAYERS) for name in by_type['Conv'])


@pytest.mark.parametrize('name, pattern, expected', [
    ('/decoder/head/Conv', '/head/', True),
    ('/decoder/head/Conv', '/decoder/*/Conv', True),
    ('/decoder/head/Conv', '*Softmax*', False),
    ('/decoder/head/Conv', 'Conv_1', False),
])
def test_fp32_layer_patterns(name, pattern, expected):
    assert layer_matches(name, pattern) is expected


@pytest.mark.tensorrt
@needs_tensorrt
@pytest.mark.parametrize('name', ['enet_panoptic', 'deeplabv3plus_mobilenetv3_panoptic'])
def test_tensorrt_parser_layers_get_the_fp32_rule(name):
    """On TensorRT's own parser: its layer names carry the ONNX prefix, every grouping
    MatMul is pinned, no constant, TopK or convolution is."""
    import onnx
    import tensorrt as trt

    from seg_perception.runtime.engine_builder import _network_flags
    if needs_strong_typing(trt):
        pytest.skip(f'TensorRT {trt.__version__} has no layer precisions (strongly typed)')
    path = os.path.join(ROOT, 'seg_perception', 'zoo', name, 'model.onnx')
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(_network_flags(trt, False))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(path), [parser.get_error(i) for i in range(parser.num_errors)]
    pinning = keep_layers_in_fp32(trt, network, (POSTPROCESS_LAYERS,))
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    onnx_matmuls = sum(node.op_type == 'MatMul' for node in onnx.load(path).graph.node)
    matmuls = [x.name for x in layers if x.type == trt.LayerType.MATRIX_MULTIPLY]
    assert len(matmuls) == onnx_matmuls and set(matmuls) <= set(pinning.pinned), matmuls
    excluded = (trt.LayerType.CONSTANT, trt.LayerType.TOPK, trt.LayerType.CONVOLUTION)
    assert not [x.name for x in layers if x.name in pinning.pinned and x.type in excluded]
    print(pinning.summary())


@pytest.mark.skipif(TRT_OK, reason='TensorRT is installed here')
def test_tensorrt_available_reports_the_real_reason():
    assert TRT_OK is False
    assert 'TensorRT' in TRT_REASON or 'cuda-python' in TRT_REASON or 'GPU' in TRT_REASON
    # What is missing here is the tensorrt module itself; the reason says how to get it.
    assert 'python3-libnvinfer' in TRT_REASON


@pytest.mark.skipif(TRT_OK, reason='TensorRT is installed here')
def test_backend_is_unavailable_without_tensorrt(tmp_path):
    manifest = ModelManifest(name='m', architecture='enet', task='semantic', input_height=8,
                             input_width=8)
    with pytest.raises(BackendUnavailable, match='TensorRT'):
        TensorRTBackend(manifest, str(tmp_path))
    with pytest.raises(ValueError, match='fp32, fp16, int8'):
        TensorRTBackend(manifest, str(tmp_path), precision='fp64')


@pytest.mark.skipif(TRT_OK, reason='TensorRT is installed here')
def test_build_engine_cli_fails_clearly_without_tensorrt(tmp_path, capsys):
    status = cli.main(['build-engine', str(tmp_path), '--precision', 'fp16'])
    captured = capsys.readouterr()
    assert status == 2
    assert 'TensorRT cannot be used on this machine' in captured.err
    assert 'docs/jetson.md' in captured.err


def test_build_engine_cli_rejects_bad_precision(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(['build-engine', str(tmp_path), '--precision', 'fp8'])
    assert 'fp32' in capsys.readouterr().err


# ---------------------------------------------------------------- CUDA (cuda-python) tests

def _cuda_reason():
    try:
        from seg_perception.runtime import cuda_memory
        cuda_memory.load_cudart()
        if cuda_memory.device_count() == 0:
            return 'no CUDA GPU'
    except (BackendUnavailable, BackendError) as error:
        return str(error)
    return None


CUDA_REASON = _cuda_reason()
needs_cuda = pytest.mark.skipif(CUDA_REASON is not None, reason=f'no CUDA: {CUDA_REASON}')


@pytest.mark.gpu
@needs_cuda
def test_cuda_round_trip_through_device_memory():
    from seg_perception.runtime import cuda_memory
    cuda_memory.set_device(0)
    stream = cuda_memory.CudaStream()
    source = cuda_memory.PinnedArray((2, 3, 5), np.int32)
    target = cuda_memory.PinnedArray((2, 3, 5), np.int32)
    device = cuda_memory.DeviceBuffer(source.nbytes)
    try:
        source.array[...] = np.arange(30, dtype=np.int32).reshape(2, 3, 5)
        target.array[...] = -1
        cuda_memory.copy_to_device_async(device, source, stream)
        cuda_memory.copy_to_host_async(target, device, stream)
        stream.synchronize()
        np.testing.assert_array_equal(target.array, source.array)
        small = cuda_memory.PinnedArray((1,), np.int32)
        with pytest.raises(BackendError, match='size mismatch'):
            cuda_memory.copy_to_host_async(small, device, stream)
        small.close()
    finally:
        for item in (device, source, target, stream):
            item.close()
    with pytest.raises(BackendError, match='after close'):
        device.pointer


@pytest.mark.gpu
@needs_cuda
def test_cuda_errors_are_backend_errors_with_the_cuda_text():
    from seg_perception.runtime import cuda_memory
    gpu = cuda_memory.gpu_properties(0)
    assert gpu.name and gpu.compute_capability[0] >= 3
    with pytest.raises(BackendError, match='cudaMalloc of .* failed: cudaError'):
        cuda_memory.DeviceBuffer(1 << 50)      # 1 PiB
    with pytest.raises(BackendError, match='cudaSetDevice'):
        cuda_memory.set_device(cuda_memory.device_count() + 3)


# ------------------------------------------------------------ real TensorRT build and run

@pytest.fixture(scope='module')
def enet_packages(tmp_path_factory):
    if not TRT_OK:
        pytest.skip(f'TensorRT unavailable: {TRT_REASON}')
    torch = pytest.importorskip('torch')
    torch.set_num_threads(1)
    from seg_test_models import export_lively_package
    made = {}
    for task in ('semantic', 'panoptic'):
        out = str(tmp_path_factory.mktemp(f'enet_{task}'))
        made[task] = export_lively_package('enet', task, 64, 128, out)
    return made


def _images(manifest, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (manifest.batch, 8, 16, 3)).astype(np.float32)
    images = np.stack([cv2.resize(c, (manifest.input_width, manifest.input_height),
                                  interpolation=cv2.INTER_CUBIC) for c in coarse])
    return np.ascontiguousarray(np.clip(images, 0, 255).transpose(0, 3, 1, 2))


def _agreement(a, b):
    return float(np.mean(a == b))


@pytest.mark.tensorrt
@needs_tensorrt
@pytest.mark.parametrize('task', ['semantic', 'panoptic'])
def test_fp16_engine_matches_onnxruntime(enet_packages, task):
    from seg_perception.runtime.onnxruntime_backend import OnnxRuntimeBackend
    package = enet_packages[task]
    manifest = ModelManifest.load(package)
    images = _images(manifest)
    reference = OnnxRuntimeBackend(manifest, package).run(images, 0.1)
    with TensorRTBackend(manifest, package, precision='fp16', progress=lambda _: None) as trt:
        outputs = trt.run(images, 0.1)
    assert set(outputs) == set(manifest.output_names)
    for name in manifest.output_names:
        assert outputs[name].dtype == reference[name].dtype
        assert outputs[name].shape == reference[name].shape
    assert _agreement(outputs['semantic'], reference['semantic']) >= 0.995


@pytest.mark.tensorrt
@needs_tensorrt
def test_engine_is_cached_then_reused_and_mismatch_fails_in_no_build_mode(enet_packages,
                                                                          tmp_path):
    package = enet_packages['semantic']
    manifest = ModelManifest.load(package)
    engine = str(tmp_path / 'enet.engine')
    first = TensorRTBackend(manifest, package, precision='fp32', engine_path=engine,
                            build_only=True, progress=lambda _: None)
    assert first.decision.action == 'build' and os.path.isfile(engine + '.json')
    with pytest.raises(BackendError, match='build_only'):
        first.run(_images(manifest), 0.1)
    second = TensorRTBackend(manifest, package, precision='fp32', engine_path=engine,
                             allow_build=False)
    assert second.decision.use
    outputs = second.run(_images(manifest), 0.1)
    second.close()
    assert outputs['semantic'].shape == (1, 64, 128)
    with pytest.raises(BackendError, match='precision'):
        TensorRTBackend(manifest, package, precision='fp16', engine_path=engine,
                        allow_build=False)


@pytest.mark.tensorrt
@needs_tensorrt
def test_one_execution_context_per_thread(enet_packages):
    """Four threads at once, each its own context; an error in any thread fails the test
    (test_tensorrt_threads.py runs the same on the stand-ins)."""
    from concurrency import run_concurrently
    package = enet_packages['semantic']
    manifest = ModelManifest.load(package)
    images = _images(manifest)
    with TensorRTBackend(manifest, package, precision='fp16', progress=lambda _: None) as trt:
        expected = trt.run(images, 0.1)['semantic']
        results, errors = run_concurrently(
            lambda index: [trt.run(images, 0.1)['semantic'] for _ in range(5)], 4)
        assert not errors, errors
        assert sorted(results) == [0, 1, 2, 3] and len(trt._states) == 5
    for runs in results.values():
        for value in runs:
            np.testing.assert_array_equal(value, expected)


def test_calibration_module_has_no_tensorrt_import_at_module_level():
    source = open(calibration.__file__).read().split('def make_entropy_calibrator')[0]
    assert 'import tensorrt' not in source
