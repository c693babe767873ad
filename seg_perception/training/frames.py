"""Training and validation frames: ``FrameSource`` (synthetic scenes or a Cityscapes-format
folder), its on-disk frame cache, and ``TrainingSamples`` (augmented frames with
Panoptic-DeepLab targets for a DataLoader).

The frame cache directory holds one sub-directory per set of frames, named by what made
them (``cache_key``: seed, count, size and the generator's fingerprint), so a run with
another seed or size, or after the generator changed, never reads frames made for another.
``complete.json`` is written last, after every frame was flushed; a directory without it
(a killed generation) is regenerated, never trusted.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from typing import Dict, Optional, Tuple

import numpy as np

from ..data.synthetic import SYNTHETIC_VALIDATION_SEED
from ..labels import LabelSet
from ..tools.progress import ProgressBar
from .config import SYNTHETIC, TrainConfig


class CachedFrame:
    """A frame read back from the on-disk frame cache (same fields as a synthetic frame)."""

    def __init__(self, image: np.ndarray, semantic: np.ndarray, instance: np.ndarray) -> None:
        self.image = image
        self.semantic = semantic
        self.instance = instance


def _generate_into_cache(job: Tuple[str, int, int, int, int, int, int]) -> None:
    """Worker: generate frames [start, stop) of a seed into the cache's memory maps."""
    from ..data.synthetic.generator import SceneGenerator
    directory, count, width, height, seed, start, stop = job
    maps = _open_cache(directory, count, height, width, 'r+')
    generator = SceneGenerator(width=width, height=height, seed=seed)
    for index in range(start, stop):
        frame = generator.generate(index)
        maps[0][index] = frame.image
        maps[1][index] = frame.semantic
        maps[2][index] = frame.instance
    for array in maps:
        array.flush()


#: The file that marks a cache sub-directory complete; written after every frame.
CACHE_COMPLETE_FILE = 'complete.json'


def generator_fingerprint() -> str:
    """12 hex digits identifying the synthetic generator: its source files and the numpy and
    OpenCV versions that draw with it (any change may change the frames of a seed)."""
    import cv2

    from ..data import synthetic
    digest = hashlib.sha256(f'numpy {np.__version__} opencv {cv2.__version__}'.encode())
    folder = os.path.dirname(os.path.abspath(synthetic.__file__))
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            digest.update(name.encode())
            with open(os.path.join(folder, name), 'rb') as stream:
                digest.update(stream.read())
    return digest.hexdigest()[:12]


def cache_key(seed: int, count: int, width: int, height: int) -> Dict[str, object]:
    """What made a set of cached frames; its sub-directory is named after it."""
    return {'seed': seed, 'count': count, 'width': width, 'height': height,
            'generator': generator_fingerprint()}


def cache_subdirectory(directory: str, key: Dict[str, object]) -> str:
    """``directory/seed<S>_n<N>_<W>x<H>_gen<G>``."""
    return os.path.join(directory, f'seed{key["seed"]}_n{key["count"]}_{key["width"]}x'
                                   f'{key["height"]}_gen{key["generator"]}')


def cache_is_complete(directory: str, key: Dict[str, object]) -> bool:
    """Whether ``directory`` holds a finished generation of exactly ``key``'s frames."""
    try:
        with open(os.path.join(directory, CACHE_COMPLETE_FILE), encoding='utf-8') as stream:
            return json.load(stream) == key
    except (OSError, ValueError):
        return False


def _open_cache(directory: str, count: int, height: int, width: int, mode: str):
    """The cache's memory maps: image (count,H,W,3) uint8, semantic (count,H,W) uint8 and
    instance (count,H,W) uint16; ``mode`` ``w+`` creates them, ``r`` / ``r+`` opens them."""
    shapes = (('image', np.uint8, (count, height, width, 3)),
              ('semantic', np.uint8, (count, height, width)),
              ('instance', np.uint16, (count, height, width)))
    return tuple(np.lib.format.open_memmap(os.path.join(directory, f'{name}.npy'), mode=mode,
                                           dtype=dtype, shape=shape if mode == 'w+' else None)
                 for name, dtype, shape in shapes)


def _reserve(maps) -> None:
    """Allocate the disk blocks of new memory maps now: on a full disk this raises OSError
    (ENOSPC) here, where writing into a sparse map later would kill the process (SIGBUS)."""
    for array in maps:
        with open(array.filename, 'r+b') as stream:
            try:
                os.posix_fallocate(stream.fileno(), 0, os.fstat(stream.fileno()).st_size)
            except OSError as error:
                if error.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise


class FrameSource:
    """Indexable frames with ``image`` (H,W,3) uint8, ``semantic`` (H,W), ``instance`` (H,W).

    ``synthetic`` generates frame ``i`` of a seed on demand, or reads it from a frame cache
    made once by ``materialize`` (generation is far slower than augmentation, and a GPU
    eats frames faster than a few cores can draw them); a directory is read as the
    Cityscapes format (``split`` = train / val), each frame resized to the network size as
    the node resizes camera frames (``preprocess.resize_labelled_frame``), so augmentation
    scales and validation measure around the scale the model will see.
    """

    def __init__(self, data: str, split: str, width: int, height: int, seed: int,
                 count: int, label_set: LabelSet) -> None:
        self.data = data
        self.count = count
        self.width, self.height = width, height
        self._cache_dir: Optional[str] = None
        self._cache = None
        if data == SYNTHETIC:
            from ..data.synthetic.generator import SceneGenerator
            self.seed = seed if split == 'train' else SYNTHETIC_VALIDATION_SEED
            self._generator = SceneGenerator(width=width, height=height, seed=self.seed)
            self._dataset = None
        else:
            from ..data.cityscapes import CityscapesDataset
            self._generator = None
            self._dataset = CityscapesDataset(data, split, label_set=label_set)
            self.count = len(self._dataset) if count <= 0 else min(count, len(self._dataset))

    def materialize(self, directory: str, workers: int, log=print) -> None:
        """Generate every synthetic frame once into memory-mapped ``.npy`` files in the
        sub-directory of ``directory`` that ``cache_key`` names (module docstring)."""
        if self._generator is None:
            return
        import multiprocessing
        key = cache_key(self.seed, self.count, self.width, self.height)
        directory = cache_subdirectory(directory, key)
        if cache_is_complete(directory, key):
            log(f'using frame cache {directory}')
        else:
            if os.path.isdir(directory):  # an interrupted generation: start afresh
                log(f'frame cache {directory} is incomplete; generating it again')
                shutil.rmtree(directory)
            os.makedirs(directory)
            started = time.monotonic()
            _reserve(_open_cache(directory, self.count, self.height, self.width, 'w+'))
            chunk = max(1, self.count // max(1, workers * 4))
            jobs = [(directory, self.count, self.width, self.height, self.seed, start,
                     min(start + chunk, self.count)) for start in range(0, self.count, chunk)]
            bar = ProgressBar(len(jobs), 'generating frames')
            if workers > 0:
                with multiprocessing.get_context('spawn').Pool(workers) as pool:
                    for done, _ in enumerate(pool.imap_unordered(_generate_into_cache, jobs)):
                        bar.update(done + 1)
            else:
                for done, job in enumerate(jobs):
                    _generate_into_cache(job)
                    bar.update(done + 1)
            bar.finish()
            from ..packages.atomic import atomic_write_text
            atomic_write_text(os.path.join(directory, CACHE_COMPLETE_FILE), json.dumps(key))
            log(f'generated {self.count} frames in {time.monotonic() - started:.0f} s')
        self._cache_dir = directory

    def __len__(self) -> int:
        return self.count

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_cache'] = None  # memory maps are reopened in each DataLoader worker
        return state

    def __getitem__(self, index: int):
        if self._cache_dir is not None:
            if self._cache is None:
                self._cache = _open_cache(self._cache_dir, self.count, self.height, self.width,
                                          'r')
            image, semantic, instance = self._cache
            return CachedFrame(np.asarray(image[index]), np.asarray(semantic[index]),
                               np.asarray(instance[index]).astype(np.int32))
        if self._generator is not None:
            return self._generator.generate(index)
        sample = self._dataset[index]
        if sample.semantic.shape == (self.height, self.width):
            return sample
        from ..images.preprocess import resize_labelled_frame
        return CachedFrame(*resize_labelled_frame(sample.image, sample.semantic,
                                                  sample.instance, self.height, self.width))


class TrainingSamples:
    """Augmented frames with Panoptic-DeepLab targets, as numpy arrays for a DataLoader.

    Sample ``i`` of epoch ``e`` is a pure function of (seed, e, i), so runs are reproducible
    whatever the number of workers.
    """

    def __init__(self, source: FrameSource, config: TrainConfig, label_set: LabelSet) -> None:
        from ..data.augment import AugmentConfig
        self.source = source
        self.config = config
        self.label_set = label_set
        self.epoch = 0
        self.augment_config = AugmentConfig(
            crop_height=config.crop_height or config.height,
            crop_width=config.crop_width or config.width,
            min_scale=config.min_scale, max_scale=config.max_scale,
            void_id=label_set.void_id, class_balanced_crop=config.class_balanced_crops)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
        from ..data.augment import augment
        from ..data.targets import panoptic_targets
        frame = self.source[index]
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        image, semantic, instance = augment(frame.image, frame.semantic, frame.instance, rng,
                                            self.augment_config)
        targets = panoptic_targets(semantic, instance, self.label_set,
                                   small_instance_area=self.config.small_instance_area,
                                   small_instance_weight=self.config.small_instance_weight)
        return {
            'image': np.ascontiguousarray(image.transpose(2, 0, 1)),
            'semantic': targets.semantic,
            'semantic_weights': targets.semantic_weights,
            'center': targets.center,
            'center_weights': targets.center_weights,
            'offset': targets.offset,
            'offset_weights': targets.offset_weights,
        }
