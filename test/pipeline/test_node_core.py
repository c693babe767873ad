"""The node's ROS-free core: parameter table, newest-frame store, rates, colours, outputs,
diagnostics and the inference worker with a real exported model."""

from dataclasses import fields
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception.images.visualize import (
    instance_palette,
    overlay,
    panoptic_color,
    semantic_color,
)
from seg_perception.labels import cityscapes
from seg_perception.pipeline.camera_monitor import CameraMonitor
from seg_perception.pipeline.config import (
    ConfigError,
    markdown_table,
    model_is_path,
    NodeConfig,
    PARAMETERS,
    PARAMETERS_BY_NAME,
)
from seg_perception.pipeline.diagnostics import build_report, ModelInfo, OK, STALE, WARN
from seg_perception.pipeline.latest_frame import LatestFrameStore
from seg_perception.pipeline.outputs import drop_small_instances, scale_camera_info
from seg_perception.pipeline.rate_stats import LatencyWindow, RateMeter
from seg_perception.pipeline.worker import Frame, InferenceWorker, render_outputs
from seg_perception.segmenter import Segmenter

torch = pytest.importorskip('torch')

NET_HEIGHT, NET_WIDTH = 64, 128


# --------------------------------------------------------------------------- config

def test_config_fields_are_the_parameter_table():
    assert [f.name for f in fields(NodeConfig)] == [spec.name for spec in PARAMETERS]
    defaults = NodeConfig.from_values({})
    for spec in PARAMETERS:
        assert getattr(defaults, spec.name) == spec.default, spec.name


@pytest.mark.parametrize('name, value, expected', [
    ('backend', 'tensorflow', "parameter backend 'tensorflow' is not valid; choose one of "
                              'auto, tensorrt, onnxruntime, torch'),
    ('input_transport', 'theora', 'raw, compressed'),
    ('qos_reliability', 'sometimes', 'auto, best_effort, reliable'),
    ('output_resolution', 'half', 'input, network'),
    ('center_threshold', 1.5, 'parameter center_threshold = 1.5 is out of range -1.0..1.0'),
    ('overlay_alpha', -0.1, 'overlay_alpha'),
    ('min_instance_area', -3, 'min_instance_area'),
    ('min_instance_area', 2.5, 'must be an integer'),
    ('cameras', [], 'parameter cameras is empty'),
    ('cameras', ['front', 'front'], 'names front more than once'),
    ('cameras', ['9lives'], 'not a valid ROS name'),
    ('batch_cameras', 'yes', 'must be true or false'),
    ('model', ' ', 'parameter model is empty'),
])
def test_invalid_values_name_the_parameter_and_what_is_valid(name, value, expected):
    with pytest.raises(ConfigError) as error:
        NodeConfig.from_values({name: value})
    assert expected in str(error.value)


def test_unknown_parameter_is_refused():
    with pytest.raises(ConfigError, match='unknown parameter.*modle'):
        NodeConfig.from_values({'modle': 'x'})


def test_runtime_update_applies_and_refuses_read_only():
    config = NodeConfig.from_values({'cameras': ['front', 'rear']})
    assert config.cameras == ('front', 'rear')
    changed = config.updated({'center_threshold': 0.3, 'overlay_alpha': 1})
    assert (changed.center_threshold, changed.overlay_alpha) == (0.3, 1.0)
    assert config.center_threshold == -1.0  # frozen original unchanged
    assert config.center_threshold_override is None  # negative: the package's own value
    assert changed.center_threshold_override == 0.3
    with pytest.raises(ConfigError, match='parameter model is read-only'):
        config.updated({'model': 'other'})
    with pytest.raises(ConfigError, match='out of range'):
        config.updated({'center_threshold': 2.0})


def test_descriptors_are_complete_and_table_lists_every_parameter():
    table = markdown_table()
    for spec in PARAMETERS:
        assert spec.description.endswith('.'), spec.name
        assert f'`{spec.name}`' in table
        if spec.type_name in ('integer', 'double'):
            assert spec.minimum is not None and spec.maximum is not None, spec.name
    for runtime in ('center_threshold', 'min_instance_area', 'overlay_alpha'):
        assert not PARAMETERS_BY_NAME[runtime].read_only
    for fixed in ('model', 'backend', 'precision', 'cameras'):
        assert PARAMETERS_BY_NAME[fixed].read_only


def test_model_path_or_zoo_name():
    assert model_is_path('/opt/models/enet') and model_is_path('./pkg')
    assert model_is_path('~/pkg') and not model_is_path('enet_panoptic')


# --------------------------------------------------------------------------- frame store

def test_store_keeps_newest_and_counts_drops():
    store = LatestFrameStore(['a', 'b'])
    assert not store.put('a', 1)
    assert store.put('a', 2)
    store.put('b', 10)
    assert store.pending() == ['a', 'b']
    assert store.take('a') == 2 and store.take('a') is None
    assert store.take_all() == {'b': 10}
    assert store.counts('a').received == 2 and store.counts('a').dropped == 1
    with pytest.raises(KeyError, match="unknown camera 'c'; cameras: a, b"):
        store.put('c', 0)


def test_store_wait_times_out_and_close_wakes_waiter():
    store = LatestFrameStore(['a'])
    assert store.wait_for_any(timeout=0.01) is False
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_any(timeout=30)))
    waiter.start()
    store.close()
    waiter.join(5)
    assert woke == [False] and not waiter.is_alive()


def test_store_accounting_under_concurrent_producers():
    store = LatestFrameStore(['a', 'b'])
    taken = {'a': 0, 'b': 0}
    done = threading.Event()

    def consume():
        while not done.is_set() or store.pending():
            if store.wait_for_any(timeout=0.01):
                for key in store.take_all():
                    taken[key] += 1

    def produce(key):
        for index in range(2000):
            store.put(key, index)

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [threading.Thread(target=produce, args=(key,)) for key in ('a', 'b')]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    consumer.join(10)
    for key in ('a', 'b'):
        counts = store.counts(key)
        assert counts.received == 2000
        assert taken[key] + counts.dropped == 2000


# --------------------------------------------------------------------------- rates

def test_rate_meter_and_latency_window():
    meter = RateMeter(window_s=2.0)
    assert meter.rate(0.0) == 0.0
    for index in range(31):
        meter.record(index * 0.1)  # 10 Hz for 3 s
    assert meter.rate(3.0) == pytest.approx(10.0)
    assert meter.rate(10.0) == 0.0  # stream stopped
    assert meter.count == 31
    window = LatencyWindow(size=100)
    assert window.summary().p50_ms is None
    for value in range(1, 201):
        window.record(value / 1000.0)  # only 101..200 ms stay
    summary = window.summary()
    assert summary.samples == 100
    assert summary.p50_ms == pytest.approx(150.5)
    assert summary.p95_ms == pytest.approx(195.05)
    assert summary.max_ms == pytest.approx(200.0)


# --------------------------------------------------------------------------- colours

def test_instance_palette_is_distinct():
    palette = instance_palette().astype(int)
    assert palette.shape == (1000, 3) and (palette[0] == 0).all()
    assert len({tuple(c) for c in palette}) == 1000


def test_panoptic_colour_one_per_segment_and_overlay_blend():
    labels = cityscapes()
    rng = np.random.default_rng(0)
    classes = rng.choice([0, 11, 13], size=(40, 60))
    instance = np.where(classes == 0, 0, rng.integers(1, 30, size=(40, 60)))
    panoptic = (classes * 1000 + instance).astype(np.int32)
    colors = panoptic_color(panoptic, labels, 1000)
    assert colors.dtype == np.uint8 and colors.shape == (40, 60, 3)
    ids = np.unique(panoptic)
    seen = {}
    for segment_id in ids:
        pixels = colors[panoptic == segment_id]
        assert (pixels == pixels[0]).all()
        seen[tuple(pixels[0])] = segment_id
    assert len(seen) == len(ids)  # distinct colour per segment
    assert tuple(colors[panoptic == 0][0]) == labels.colors[0]
    image = np.full((40, 60, 3), 200, np.uint8)
    semantic_colors = semantic_color(classes.astype(np.uint8), labels)
    assert (overlay(image, semantic_colors, 0.0) == image).all()
    assert (overlay(image, semantic_colors, 1.0) == semantic_colors).all()
    half = overlay(image, semantic_colors, 0.5).astype(int)
    assert np.abs(half - (200 + semantic_colors.astype(int)) / 2).max() <= 1
    with pytest.raises(ValueError, match='alpha'):
        overlay(image, semantic_colors, 1.5)


# --------------------------------------------------------------------------- outputs

def _result_with_instances():
    from seg_perception.segmenter import SegmentationResult, SegmentationTiming
    semantic = np.full((20, 20), 0, np.uint8)
    semantic[:10, :10] = 13
    semantic[15:, 15:] = 11
    instance = np.zeros((20, 20), np.int32)
    instance[:10, :10] = 1     # 100 px
    instance[15:, 15:] = 2     # 25 px
    panoptic = (semantic.astype(np.int32) * 1000 + instance).astype(np.int32)
    return SegmentationResult(semantic, np.ones((20, 20), np.float32), instance, panoptic,
                              SegmentationTiming(), (20, 20), (20, 20), 1000, (11, 13))


def test_drop_small_instances_keeps_class_and_scales_area():
    result = _result_with_instances()
    assert drop_small_instances(result, 0, (20, 20)) is result
    assert drop_small_instances(result, 25, (20, 20)) is result
    dropped = drop_small_instances(result, 26, (20, 20))
    assert set(np.unique(dropped.instance)) == {0, 1}
    assert (dropped.panoptic[15:, 15:] == 11000).all()
    assert (dropped.panoptic[:10, :10] == 13001).all()
    # Network 10x10 vs output 20x20: 7 network pixels = 28 output pixels > 25.
    assert set(np.unique(drop_small_instances(result, 7, (10, 10)).instance)) == {0, 1}
    assert (result.instance[15:, 15:] == 2).all()  # input untouched


def test_scale_camera_info_to_output_size():
    roi = SimpleNamespace(x_offset=10, y_offset=20, width=100, height=50)
    info = SimpleNamespace(width=1024, height=512, roi=roi,
                           k=[800.0, 0.0, 512.0, 0.0, 790.0, 256.0, 0.0, 0.0, 1.0],
                           p=[800.0, 0.0, 512.0, -40.0, 0.0, 790.0, 256.0, 0.0, 0.0, 0.0,
                              1.0, 0.0])
    scale_camera_info(info, (128, 256))
    assert (info.width, info.height) == (256, 128)
    np.testing.assert_allclose(info.k, [200, 0, 128, 0, 197.5, 64, 0, 0, 1])
    np.testing.assert_allclose(info.p, [200, 0, 128, -10, 0, 197.5, 64, 0, 0, 0, 1, 0])
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (2, 5, 25, 12)
    uncalibrated = SimpleNamespace(width=0, height=0, k=[0.0] * 9, p=[0.0] * 12, roi=roi)
    assert scale_camera_info(uncalibrated, (128, 256)).width == 256


# --------------------------------------------------------------------------- diagnostics

def test_diagnostics_levels_and_values():
    model = ModelInfo('enet_panoptic', 'onnxruntime', 'cpu', 'fp32', 'why', (128, 256),
                      'panoptic')
    idle, busy, stuck = CameraMonitor(), CameraMonitor(), CameraMonitor()
    for index in range(11):
        busy.frame_received(index * 0.1)
        busy.frame_published(index * 0.1 + 0.05, 0.05, 40.0)
        stuck.frame_received(index * 0.1)
    busy.frame_rejected("unsupported image encoding 'foo'")
    report = build_report('/seg', model, ('idle', 'busy', 'stuck'),
                          [m.snapshot(1.0, dropped=3) for m in (idle, busy, stuck)], True)
    assert [entry.name for entry in report] == ['/seg: model', '/seg: idle', '/seg: busy',
                                                '/seg: stuck']
    assert [entry.level for entry in report] == [OK, STALE, OK, WARN]
    values = dict(report[2].values)
    assert values['input_rate_hz'] == '10.00' and values['latency_p50_ms'] == '50.0'
    assert values['rejected'] == '1' and 'foo' in values['last_rejection']
    assert values['dropped'] == '3' and values['backend'] == 'onnxruntime'
    assert dict(report[0].values)['backend_reason'] == 'why'


# --------------------------------------------------------------------------- worker

@pytest.fixture(scope='module')
def segmenter(tmp_path_factory):
    torch.set_num_threads(1)
    path = export_lively_package('enet', 'panoptic', NET_HEIGHT, NET_WIDTH,
                                 str(tmp_path_factory.mktemp('enet_b2')), batch=2)
    with Segmenter.from_package(path, backend='onnxruntime', threads=1) as created:
        yield created


def _images(count, height=120, width=200):
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _run_worker(segmenter, config, frames, wants=lambda camera, output: True):
    store = LatestFrameStore([frame.camera for frame in frames])
    delivered, errors = {}, []
    worker = InferenceWorker(segmenter, store, lambda: config, wants,
                             lambda frame, outputs: delivered.update({frame.camera: outputs}),
                             lambda camera, reason: errors.append((camera, reason)))
    for frame in frames:
        store.put(frame.camera, frame)
    worker.process_pending()
    return delivered, errors


def test_worker_batched_and_unbatched_give_identical_outputs(segmenter):
    images = _images(2)
    frames = [Frame(camera, image, None, 0.0) for camera, image in zip('ab', images)]
    base = NodeConfig.from_values({'cameras': ['a', 'b']})
    batched, _ = _run_worker(segmenter, base, frames)
    single, _ = _run_worker(segmenter, base.updated({'batch_cameras': False}), frames)
    for camera in 'ab':
        for output in ('semantic', 'instance', 'panoptic', 'overlay', 'panoptic_color'):
            np.testing.assert_array_equal(getattr(batched[camera], output),
                                          getattr(single[camera], output))
    assert batched['a'].result.instance.max() > 0  # the lively model finds instances


def test_worker_renders_only_wanted_outputs_at_network_resolution(segmenter):
    config = NodeConfig.from_values({'output_resolution': 'network',
                                     'instance_encoding': 'mono16'})
    frame = Frame('camera', _images(1)[0], None, 0.0)
    delivered, _ = _run_worker(segmenter, config, [frame],
                               wants=lambda camera, output: output in ('instance', 'overlay'))
    outputs = delivered['camera']
    assert outputs.output_hw == (NET_HEIGHT, NET_WIDTH)
    assert outputs.instance.dtype == np.uint16 and outputs.overlay.shape == (64, 128, 3)
    assert outputs.semantic is None and outputs.panoptic_color is None


def test_worker_reports_a_failing_frame_and_keeps_serving(segmenter):
    config = NodeConfig.from_values({'cameras': ['bad', 'good'], 'batch_cameras': False})
    bad = Frame('bad', np.zeros((10, 10), np.uint8), None, 0.0)
    good = Frame('good', _images(1)[0], None, 0.0)
    delivered, errors = _run_worker(segmenter, config, [bad, good])
    assert list(delivered) == ['good']
    assert errors and errors[0][0] == 'bad' and 'ValueError' in errors[0][1]


def test_render_applies_runtime_min_instance_area(segmenter):
    image = _images(1)[0]
    result = segmenter.segment(image)
    frame = Frame('camera', image, None, 0.0)
    config = NodeConfig.from_values({})
    everything = render_outputs(frame, result, config, segmenter, lambda c, o: True)
    huge = render_outputs(frame, result, config.updated({'min_instance_area': 10 ** 6}),
                          segmenter, lambda c, o: True)
    assert everything.instance.max() > 0 and huge.instance.max() == 0
    np.testing.assert_array_equal(huge.panoptic // 1000, everything.panoptic // 1000)


# --------------------------------------------------------------------------- benchmark bits

def test_benchmark_reads_header_stamp_from_cdr_and_formats_report():
    pytest.importorskip('rclpy')
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from seg_perception.ros.node_benchmark import (
        format_node_report,
        header_stamp,
        NodeBenchmarkReport,
    )
    msg = Image(encoding='rgb8')
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000123, 456789
    msg.header.frame_id = 'a_rather_long_frame_id'
    assert header_stamp(serialize_message(msg)) == (1700000123, 456789)
    report = NodeBenchmarkReport('m', 'onnxruntime', '1024x512', 100.0, 105.0, 5.0, 100.0,
                                 112.0, 12.0, 9.0, 15.0, 10.0, 480.0, 10)
    text = format_node_report(report)
    assert '| node: camera publish -> panoptic received | 105 ms (+5.0 % vs Segmenter) |' \
        in text
    assert '480 MiB' in text


def test_detection_boxes_and_vision_msgs_array():
    from seg_perception.pipeline.outputs import detection_boxes
    result = _result_with_instances()
    boxes = sorted(detection_boxes(result, cityscapes().names), key=lambda box: box.id)
    assert [(box.id, box.class_name) for box in boxes] == [(11002, 'person'), (13001, 'car')]
    person = boxes[0]
    assert (person.center_x, person.center_y, person.width, person.height) == (17.5, 17.5,
                                                                                5.0, 5.0)
    pytest.importorskip('rclpy')
    from seg_perception.ros.node import detection_array

    class Detection2DArray:  # vision_msgs 4.x layout
        def __init__(self, header=None):
            self.header, self.detections = header, []

    class Detection2D:
        def __init__(self, header=None):
            self.header, self.id, self.results = header, '', []
            self.bbox = SimpleNamespace(center=SimpleNamespace(
                position=SimpleNamespace(x=0.0, y=0.0), theta=0.0), size_x=0.0, size_y=0.0)

    class ObjectHypothesisWithPose:
        def __init__(self):
            self.hypothesis = SimpleNamespace(class_id='', score=0.0)

    vision = SimpleNamespace(Detection2DArray=Detection2DArray, Detection2D=Detection2D,
                             ObjectHypothesisWithPose=ObjectHypothesisWithPose)
    array = detection_array(vision, 'header', boxes)
    assert array.header == 'header' and len(array.detections) == 2
    car = array.detections[1]
    assert car.id == '13001' and car.header == 'header'
    assert (car.bbox.center.position.x, car.bbox.size_x) == (5.0, 10.0)
    assert car.results[0].hypothesis.class_id == 'car'


def test_incompatible_qos_warns_until_the_subscription_is_recreated():
    model = ModelInfo('m', 'onnxruntime', 'cpu', 'fp32', '', (64, 128), 'panoptic')
    monitor = CameraMonitor()
    monitor.set_reliability('reliable')
    monitor.qos_incompatible()
    entry = build_report('/n', model, ('cam',), [monitor.snapshot(0.0, 0)], True)[1]
    assert entry.level == WARN and 'incompatible QoS' in entry.message
    monitor.set_reliability('best_effort')
    entry = build_report('/n', model, ('cam',), [monitor.snapshot(0.0, 0)], True)[1]
    assert entry.level == STALE
    values = dict(entry.values)
    assert values['incompatible_qos_events'] == '1' and values['qos_reliability'] == 'best_effort'


def test_pipelined_worker_delivers_the_same_outputs_and_stops(segmenter):
    images = _images(2)
    config = NodeConfig.from_values({'cameras': ['a', 'b']})
    expected, _ = _run_worker(segmenter, config, [Frame(c, i, None, 0.0)
                                                  for c, i in zip('ab', images)])
    store = LatestFrameStore(['a', 'b'])
    delivered, errors = {}, []
    done = threading.Event()

    def deliver(frame, outputs):
        delivered[frame.camera] = outputs
        if len(delivered) == 2:
            done.set()

    worker = InferenceWorker(segmenter, store, lambda: config, lambda camera, output: True,
                             deliver, lambda camera, reason: errors.append(reason),
                             pipelined=True)
    worker.start()
    try:
        for camera, image in zip('ab', images):
            store.put(camera, Frame(camera, image, None, 0.0))
        assert done.wait(60), errors
    finally:
        assert worker.stop(timeout=30)
    assert not errors
    for camera in 'ab':
        np.testing.assert_array_equal(delivered[camera].panoptic, expected[camera].panoptic)
        np.testing.assert_array_equal(delivered[camera].overlay, expected[camera].overlay)


def test_engine_options_reach_only_the_tensorrt_backend():
    from seg_perception.pipeline.config import ConfigError, NodeConfig
    assert NodeConfig.from_values({}).engine_options() == {}
    config = NodeConfig.from_values({'force_engine_update': True, 'allow_engine_build': False,
                                     'engine_file_path': '/var/engines/front.engine'})
    assert config.engine_options() == {'force_rebuild': True, 'allow_build': False,
                                       'engine_path': '/var/engines/front.engine'}
    with pytest.raises(ConfigError, match='engine_file_path applies to the TensorRT backend'):
        NodeConfig.from_values({'backend': 'torch', 'engine_file_path': 'x.engine'})
