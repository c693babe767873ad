"""``seg-perception demo``: segment a few generated street images and write result PNGs.

Interim demo until the ROS node lands: exports (or reuses from a cache directory) an ENet
panoptic package, runs it through the ``Segmenter`` on CPU or whatever ``auto`` picks, and
writes ``input | semantic | instance | panoptic`` strips to ``demo_output/``. Without a
``--package`` the network has random weights: the pictures show the pipeline, not a
trained model.
"""

from __future__ import annotations

import os
import sys

HELP = 'segment a few generated images with an ENet panoptic model and write result PNGs'

DEMO_ARCHITECTURE = 'enet'
DEMO_TASK = 'panoptic'


def add_arguments(parser) -> None:
    from ..runtime.base import BACKEND_CHOICES, DEVICE_CHOICES
    parser.add_argument('--package', metavar='DIR',
                        help='use this exported package instead of a random-weight ENet')
    parser.add_argument('--cache-dir', metavar='DIR', default=default_cache_dir(),
                        help='where the exported demo package is kept (default: %(default)s)')
    parser.add_argument('--out', metavar='DIR', default='demo_output',
                        help='output directory for the PNGs (default: %(default)s)')
    parser.add_argument('--frames', type=int, default=4, help='number of images')
    parser.add_argument('--height', type=int, default=256, help='network input height')
    parser.add_argument('--width', type=int, default=512, help='network input width')
    parser.add_argument('--backend', default='auto', choices=BACKEND_CHOICES)
    parser.add_argument('--device', default='auto', choices=DEVICE_CHOICES)


def default_cache_dir() -> str:
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'seg_perception', 'demo')


def cached_demo_package(cache_dir: str, height: int, width: int) -> str:
    """Path of the demo package in ``cache_dir``, exporting it first when absent or broken.

    The export goes to a temporary sibling directory renamed into place, so an interrupted
    export never leaves a half-written package in the cache.
    """
    import shutil
    import tempfile

    from ..benchmark import export_random_package
    from ..manifest import ManifestError
    from ..package import load_model_package

    path = os.path.join(cache_dir, f'{DEMO_ARCHITECTURE}_{DEMO_TASK}_{width}x{height}')
    if os.path.isdir(path):
        try:
            load_model_package(path)
            print(f'using cached package {path}')
            return path
        except (ManifestError, OSError) as error:
            print(f'cached package {path} is unusable ({error}); exporting it again')
            shutil.rmtree(path)
    os.makedirs(cache_dir, exist_ok=True)
    print(f'exporting a randomly initialised {DEMO_ARCHITECTURE} ({DEMO_TASK}) '
          f'{width}x{height} to {path}...', flush=True)
    scratch = tempfile.mkdtemp(prefix='.export-', dir=cache_dir)
    try:
        export_random_package(DEMO_ARCHITECTURE, DEMO_TASK, height, width, scratch)
        os.replace(scratch, path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return path


def demo_images(count: int, height: int = 360, width: int = 640):
    """``count`` generated RGB uint8 (height, width, 3) street-like images."""
    try:
        from ..data.synthetic import SceneGenerator
    except ImportError:
        return [_simple_street(height, width, seed) for seed in range(count)]
    generator = SceneGenerator(height=height, width=width, seed=0)
    return [generator.generate(index).image for index in range(count)]


def _simple_street(height: int, width: int, seed: int):
    """Sky, buildings, road and a few car / pedestrian boxes, drawn with OpenCV."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), dtype=np.uint8)
    horizon = int(height * rng.uniform(0.35, 0.5))
    sky = np.linspace(150, 230, horizon, dtype=np.float32)[:, None]
    image[:horizon] = np.stack([sky * 0.5, sky * 0.7, sky], axis=-1).astype(np.uint8)
    image[horizon:] = (90, 90, 95)
    x = 0
    while x < width:
        building_width = int(rng.integers(width // 10, width // 4))
        top = int(rng.integers(height // 10, horizon))
        color = tuple(int(c) for c in rng.integers(60, 160, 3))
        cv2.rectangle(image, (x, top), (x + building_width, horizon), color, -1)
        x += building_width
    cv2.fillPoly(image, [np.array([[width // 2 - width // 40, horizon],
                                   [width // 2 + width // 40, horizon],
                                   [width * 3 // 4, height], [width // 4, height]])],
                 (128, 64, 128))
    for _ in range(int(rng.integers(2, 5))):
        car_width = int(rng.integers(width // 10, width // 5))
        left = int(rng.integers(0, width - car_width))
        bottom = int(rng.integers(horizon + height // 10, height))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(image, (left, bottom - car_width // 2), (left + car_width, bottom),
                      color, -1)
    return cv2.GaussianBlur(image, (3, 3), 0)


def instance_colors(instance):
    """int32 (H, W) instance ids -> uint8 (H, W, 3); id 0 black, ids hashed to colours."""
    import numpy as np
    ids = np.asarray(instance, dtype=np.int64)
    table = np.random.default_rng(7).integers(64, 256, (1024, 3)).astype(np.uint8)
    table[0] = 0
    return table[ids % 1024]


def panoptic_colors(panoptic, label_set, label_divisor: int):
    """int32 (H, W) panoptic ids -> uint8 (H, W, 3): class colour, each instance shaded."""
    import numpy as np
    classes = np.clip(panoptic // label_divisor, 0, 255).astype(np.uint8)
    instance = panoptic % label_divisor
    shade = np.where(instance > 0, 0.55 + 0.45 * ((instance * 7919) % 11) / 10.0, 1.0)
    colors = label_set.colorize(classes).astype(np.float32) * shade[..., None]
    return np.clip(colors, 0, 255).astype(np.uint8)


def main(args) -> int:
    import time

    import cv2
    import numpy as np

    from ..segmenter import Segmenter

    if args.frames < 1:
        print(f'error: --frames must be at least 1, got {args.frames}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    package = args.package or cached_demo_package(args.cache_dir, args.height, args.width)
    with Segmenter.from_package(package, backend=args.backend,
                                device=args.device) as segmenter:
        print(f'backend: {segmenter.backend.info.name} {segmenter.backend.info.device} '
              f'({segmenter.backend_reason})')
        if not args.package:
            print('note: random weights, so the colours show the pipeline, not a trained model')
        os.makedirs(args.out, exist_ok=True)
        labels = segmenter.manifest.label_set
        for index, image in enumerate(demo_images(args.frames)):
            result = segmenter.segment(image)
            timing = result.timing
            strip = np.concatenate([
                image, labels.colorize(result.semantic), instance_colors(result.instance),
                panoptic_colors(result.panoptic, labels, result.label_divisor)], axis=1)
            path = os.path.join(args.out, f'frame_{index:02d}.png')
            if not cv2.imwrite(path, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)):
                print(f'error: could not write {path}', file=sys.stderr)
                return 1
            things = sum(1 for segment in result.segments if segment.is_thing)
            print(f'frame {index}: {image.shape[1]}x{image.shape[0]} preprocess '
                  f'{timing.preprocess_ms:.1f} ms, inference {timing.inference_ms:.1f} ms, '
                  f'post-processing {timing.postprocess_ms:.1f} ms; {len(result.segments)} '
                  f'segments ({things} things) -> {path}')
    print(f'done in {time.perf_counter() - start:.1f} s; results in {args.out}/')
    return 0
