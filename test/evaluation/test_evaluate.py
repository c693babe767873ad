"""Offline evaluation of bags and folders with a real exported model (ONNX Runtime CPU)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from seg_test_models import export_lively_package

from seg_perception import Segmenter
from seg_perception.bags.bag_io import (
    BagError,
    BagReader,
    BagWriter,
    decode_rgb,
    image_message,
    IMAGE_TYPE,
    make_header,
    stamp_to_ns,
)
from seg_perception.bags.synthetic_bag import write_synthetic_bag
from seg_perception.cli import main as cli_main
from seg_perception.data.synthetic.generator import SceneGenerator
from seg_perception.evaluation.config import EvalConfig, EvalError
from seg_perception.evaluation.evaluate import run_evaluation
from seg_perception.evaluation.output_bag import OUTPUT_CHOICES
from seg_perception.images.raw import decode_image

torch = pytest.importorskip('torch')

NET_H, NET_W = 64, 128
IMAGE_W, IMAGE_H = 256, 128
FRAMES, CAMERAS = 3, 2
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Timing-dependent fields; everything else must match exactly between equivalent inputs.
TIMING_KEYS = ('latency_ms', 'throughput_fps', 'wall_s', 'input', 'output_bag', 'report')


pytestmark = pytest.mark.usefixtures('torch_one_thread')


@pytest.fixture(scope='module')
def package(tmp_path_factory):
    return export_lively_package('enet', 'panoptic', NET_H, NET_W,
                                 str(tmp_path_factory.mktemp('enet_panoptic')))


@pytest.fixture(scope='module')
def segmenter(package):
    with Segmenter.from_package(package, backend='onnxruntime', device='cpu',
                                threads=1) as opened:
        yield opened


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    """One synthetic drive as sqlite3 and MCAP bags and as a Cityscapes-format folder."""
    root = tmp_path_factory.mktemp('drive')
    paths = {'folder': str(root / 'cityscapes')}
    for storage in ('sqlite3', 'mcap'):
        paths[storage] = str(root / storage)
        write_synthetic_bag(paths[storage], frames=FRAMES, cameras=CAMERAS, storage=storage,
                            width=IMAGE_W, height=IMAGE_H, seed=5,
                            cityscapes_dir=paths['folder'] if storage == 'mcap' else None)
    paths['png'] = str(root / 'png')
    write_synthetic_bag(paths['png'], frames=FRAMES, cameras=CAMERAS, width=IMAGE_W,
                        height=IMAGE_H, seed=5, image_format='png')
    return paths


def _evaluate(segmenter, out_dir, **options):
    options.setdefault('progress', False)
    options.setdefault('handle_sigint', False)
    return run_evaluation(EvalConfig(out_dir=str(out_dir), model='unused', **options),
                          segmenter=segmenter)


def _scores(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


TOPICS = [f'/cam{k}/image_raw' for k in range(CAMERAS)]


def test_sqlite3_and_mcap_give_identical_metrics(segmenter, drive, tmp_path):
    runs = {storage: _evaluate(segmenter, tmp_path / storage, bag=drive[storage],
                               image_topics=TOPICS, outputs=())
            for storage in ('sqlite3', 'mcap')}
    mcap = runs['mcap'].metrics
    assert _scores(runs['sqlite3'].metrics) == _scores(mcap)
    # Lossless PNG CompressedImage input, decoded by 3 workers, scores the same.
    png = _evaluate(segmenter, tmp_path / 'png', bag=drive['png'], outputs=(), workers=3,
                    image_topics=[t + '/compressed' for t in TOPICS]).metrics
    assert png['semantic'] == mcap['semantic'] and png['panoptic'] == mcap['panoptic']
    assert png['per_camera'] == mcap['per_camera']
    assert mcap['frames']['read'] == mcap['frames']['evaluated'] == FRAMES * CAMERAS
    assert mcap['semantic']['mean_iou'] is not None and mcap['panoptic']['pq'] is not None
    assert set(mcap['per_camera']) == {'/cam0', '/cam1'}
    assert os.path.isfile(runs['mcap'].report_path)
    with open(runs['mcap'].metrics_path) as stream:
        assert json.load(stream)['frames']['evaluated'] == FRAMES * CAMERAS


def test_bag_evaluation_equals_folder_evaluation(segmenter, drive, tmp_path):
    bag = _evaluate(segmenter, tmp_path / 'bag', bag=drive['mcap'], image_topics=TOPICS,
                    outputs=()).metrics
    folder = _evaluate(segmenter, tmp_path / 'folder', dataset_dir=drive['folder']).metrics
    labels_dir = _evaluate(segmenter, tmp_path / 'labels_dir', bag=drive['mcap'],
                           image_topics=TOPICS, labels_dir=drive['folder'], outputs=()).metrics
    for other in (folder, labels_dir):
        assert other['frames']['evaluated'] == FRAMES * CAMERAS
        assert other['semantic'] == bag['semantic']
        assert other['panoptic'] == bag['panoptic']
        assert other['per_camera'] == bag['per_camera']
    assert folder['output_bag'] is None


def test_output_bag_has_every_frame_and_topic(segmenter, drive, tmp_path):
    summary = _evaluate(segmenter, tmp_path / 'out', bag=drive['sqlite3'], image_topics=TOPICS,
                        report_format='html')
    assert summary.report_path.endswith('report.html')
    outputs = list(OUTPUT_CHOICES)
    assert {'overlay', 'panoptic_color', 'confidence', 'camera_info'} <= set(outputs)
    with BagReader(summary.output_bag) as reader, BagReader(drive['sqlite3']) as source:
        assert reader.path.endswith('segmentation_bag')
        assert os.path.isfile(os.path.join(summary.output_bag, 'segmentation_bag.mcap'))
        input_stamps = {t: sorted(stamp_to_ns(source.deserialize(m).header)
                                  for m in source.messages([t])) for t in TOPICS}
        for k in range(CAMERAS):
            for output in outputs:
                topic = f'/cam{k}/segmentation/{output}'
                stamps = sorted(stamp_to_ns(reader.deserialize(m).header)
                                for m in reader.messages([topic]))
                assert stamps == input_stamps[f'/cam{k}/image_raw'], topic
            assert reader.counts[f'/cam{k}/image_raw'] == FRAMES
        images = {}
        for message in reader.messages(['/cam1/image_raw', '/cam1/segmentation/semantic',
                                        '/cam1/segmentation/panoptic']):
            msg = reader.deserialize(message)
            images.setdefault(stamp_to_ns(msg.header), {})[message.topic] = (message, msg)
        for entry in images.values():
            message, msg = entry['/cam1/image_raw']
            assert msg.header.frame_id == 'cam1_optical_frame'
            expected = segmenter.segment(decode_rgb(msg, message.msgtype))
            semantic = entry['/cam1/segmentation/semantic'][1]
            assert semantic.encoding == 'mono8'
            np.testing.assert_array_equal(decode_image(semantic), expected.semantic)
            np.testing.assert_array_equal(
                decode_image(entry['/cam1/segmentation/panoptic'][1]), expected.panoptic)


def _odd_bag(path):
    """4 images: one good, one with a label of another size, two with the same stamp and no
    label; plus a label without an image."""
    frame = SceneGenerator(IMAGE_W, IMAGE_H, seed=1).generate(0)
    with BagWriter(path) as writer:
        store = writer.typestore
        writer.add_topic('/cam/image_raw', IMAGE_TYPE)
        writer.add_topic('/cam/labels/semantic', IMAGE_TYPE)
        for stamp in (10, 20, 30, 30):
            writer.write('/cam/image_raw', stamp,
                         image_message(store, frame.image, 'rgb8', make_header(store, stamp, 'c')))
        writer.write('/cam/labels/semantic', 31,
                     image_message(store, frame.semantic, 'mono8', make_header(store, 10, 'c')))
        writer.write('/cam/labels/semantic', 32, image_message(
            store, frame.semantic[:, :100], 'mono8', make_header(store, 20, 'c')))
        writer.write('/cam/labels/semantic', 33,
                     image_message(store, frame.semantic, 'mono8', make_header(store, 99, 'c')))


def test_unmatched_and_bad_labels_are_counted_and_listed(segmenter, tmp_path):
    _odd_bag(str(tmp_path / 'odd'))
    metrics = _evaluate(segmenter, tmp_path / 'out', bag=str(tmp_path / 'odd'),
                        image_topics=['/cam/image_raw']).metrics
    frames = metrics['frames']
    assert (frames['read'], frames['evaluated'], frames['skipped']) == (4, 1, 3)
    assert frames['skip_reasons'] == {'duplicate stamp': 1, 'label size': 1, 'no label': 1}
    details = {f['stamp_ns']: f['detail'] for f in frames['skipped_frames']
               if f['reason'] != 'duplicate stamp'}
    assert 'is 100x128 but its image is 256x128' in details[20]
    assert 'no message on /cam/labels/semantic with stamp 30' in details[30]
    assert frames['unmatched_labels'] == 1
    assert metrics['panoptic'] is None and metrics['semantic']['mean_iou'] is not None


def test_bad_inputs_give_clear_errors(segmenter, drive, tmp_path, capsys, package):
    with pytest.raises(BagError, match=r'image topic /front/image_raw is not in bag .*'
                                       r'/cam0/image_raw \(sensor_msgs/msg/Image'):
        _evaluate(segmenter, tmp_path / 'a', bag=drive['mcap'], image_topics=['/front/image_raw'])
    with pytest.raises(BagError, match='has type sensor_msgs/msg/CameraInfo; expected '
                                       'sensor_msgs/msg/Image or'):
        _evaluate(segmenter, tmp_path / 'b', bag=drive['mcap'],
                  image_topics=['/cam0/camera_info'])
    with pytest.raises(EvalError, match='exactly one input'):
        _evaluate(segmenter, tmp_path / 'c')
    done = _evaluate(segmenter, tmp_path / 'd', bag=drive['mcap'], image_topics=TOPICS[:1],
                     outputs=(), max_frames=1)
    assert done.metrics['frames']['read'] == 1
    with pytest.raises(EvalError, match='already holds an evaluation'):
        _evaluate(segmenter, tmp_path / 'd', bag=drive['mcap'], image_topics=TOPICS[:1])
    broken = tmp_path / 'broken.mcap'
    broken.write_bytes(open(os.path.join(drive['mcap'], 'mcap.mcap'), 'rb').read()[:5000])
    assert cli_main(['eval', str(broken), '--image-topic', '/cam0/image_raw', '--model',
                     package, '--backend', 'onnxruntime', '--out', str(tmp_path / 'e')]) == 2
    assert 'cannot be opened' in capsys.readouterr().err


def test_bag_corrupt_part_way_keeps_the_frames_before(segmenter, drive, tmp_path, package,
                                                     capsys):
    import shutil
    bag = tmp_path / 'corrupt'
    shutil.copytree(drive['sqlite3'], bag)
    database = bag / 'sqlite3.db3'
    data = bytearray(database.read_bytes())
    page = int(len(data) * 0.7) // 4096 * 4096
    data[page:page + 4096] = b'\xa5' * 4096
    database.write_bytes(bytes(data))
    summary = _evaluate(segmenter, tmp_path / 'out', bag=str(bag), image_topics=TOPICS)
    frames = summary.metrics['frames']
    assert 'reading stopped after' in summary.metrics['read_error']
    assert summary.exit_code == 3
    assert 0 < frames['evaluated'] < FRAMES * CAMERAS
    assert frames['read'] == frames['evaluated'] + frames['skipped']
    assert set(frames['skip_reasons']) <= {'bag read error'}
    with BagReader(summary.output_bag) as reader:
        assert reader.counts['/cam0/segmentation/semantic'] + \
            reader.counts['/cam1/segmentation/semantic'] == frames['evaluated']
    assert cli_main(['eval', str(bag), '--model', package, '--backend', 'onnxruntime',
                     '--out', str(tmp_path / 'cli'), '--no-progress'] +
                    [a for t in TOPICS for a in ('--image-topic', t)]) == 3
    assert 'warning: bag' in capsys.readouterr().err


def _long_bag(path, frames, width=IMAGE_W, height=IMAGE_H):
    """``frames`` images (3 distinct pictures cycled) with panoptic labels, quick to write."""
    pictures = [SceneGenerator(width, height, seed=2).generate(i) for i in range(3)]
    with BagWriter(path) as writer:
        store = writer.typestore
        writer.add_topic('/cam0/image_raw', IMAGE_TYPE)
        writer.add_topic('/cam0/labels/panoptic', IMAGE_TYPE)
        for index in range(frames):
            picture = pictures[index % 3]
            stamp = 1_000_000_000 + index * 50_000_000
            header = make_header(store, stamp, 'cam0')
            writer.write('/cam0/image_raw', stamp,
                         image_message(store, picture.image, 'rgb8', header))
            writer.write('/cam0/labels/panoptic', stamp,
                         image_message(store, picture.panoptic, '32SC1', header))


def test_sigint_leaves_readable_outputs(package, tmp_path):
    bag = str(tmp_path / 'long')
    _long_bag(bag, 200)
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    process = subprocess.Popen(
        [sys.executable, '-m', 'seg_perception.cli', 'eval', bag, '--image-topic',
         '/cam0/image_raw', '--model', package, '--backend', 'onnxruntime', '--threads', '1',
         '--out', str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # The first progress line (10 %) appears after the SIGINT handler is installed.
    first = process.stderr.readline()
    assert first.startswith('eval ['), first
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert 'interrupted' in stderr
    with open(out / 'metrics.json') as stream:
        metrics = json.load(stream)
    frames = metrics['frames']
    assert metrics['interrupted'] is True
    assert frames['read'] == frames['evaluated'] + frames['skipped']
    assert 20 <= frames['evaluated'] < 200
    assert set(frames['skip_reasons']) <= {'interrupted'}
    with BagReader(str(out / 'segmentation_bag')) as reader:
        count = sum(1 for _ in reader.messages(['/cam0/segmentation/panoptic']))
        assert count == reader.counts['/cam0/segmentation/semantic'] == frames['evaluated']
    assert (out / 'report.md').is_file()


def test_benchmark_eval_throughput_vs_bare_segmenter(tmp_path):
    """Prints the evaluation's throughput next to the bare Segmenter's on the same frames.

    The machine is shared, so each variant runs in several interleaved rounds and the best
    round counts (wall-clock frames/s); process CPU seconds per frame are printed too since
    they do not grow with other processes' load.
    """
    frames, rounds = 4, 3
    package = export_lively_package('enet', 'panoptic', 256, 512, str(tmp_path / 'enet512'))
    bag = str(tmp_path / 'bench')
    _long_bag(bag, frames, 1024, 512)
    variants = (('I/O only (no labels, no output bag)', {'outputs': (), 'no_labels': True}),
                ('metrics, no output bag', {'outputs': ()}),
                ('metrics + output bag', {}))
    best = {}
    cpu = {}
    with Segmenter.from_package(package, backend='onnxruntime', device='cpu') as seg:
        with BagReader(bag) as reader:
            images = [decode_rgb(reader.deserialize(m), m.msgtype)
                      for m in reader.messages(['/cam0/image_raw'])]
        seg.segment(images[0])
        for round_index in range(rounds):
            started, cpu_started = time.perf_counter(), time.process_time()
            for image in images:
                seg.segment(image)
            _keep_best(best, cpu, 'bare Segmenter', frames / (time.perf_counter() - started),
                       (time.process_time() - cpu_started) / frames)
            for index, (name, options) in enumerate(variants):
                cpu_started = time.process_time()
                summary = _evaluate(seg, tmp_path / f'{round_index}_{index}', bag=bag,
                                    report_format='none', image_topics=['/cam0/image_raw'],
                                    **options)
                assert summary.metrics['frames']['evaluated'] == frames
                _keep_best(best, cpu, name, summary.metrics['throughput_fps'],
                           (time.process_time() - cpu_started) / frames)
    bare = best['bare Segmenter']
    print(f'\nbenchmark: 1024x512 images, ENet panoptic 512x256 network, ONNX Runtime CPU, '
          f'{frames} frames, best of {rounds} rounds')
    for name, fps in best.items():
        print(f'  {name:38s} {fps:6.2f} frames/s = {fps / bare:.2f}x bare; '
              f'CPU {cpu[name] * 1e3:6.1f} ms/frame')


def _keep_best(best, cpu, name, fps, cpu_s):
    if fps > best.get(name, 0.0):
        best[name] = fps
    cpu[name] = min(cpu.get(name, float('inf')), cpu_s)
