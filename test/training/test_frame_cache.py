"""The frame cache is keyed by what made it and trusted only when marked complete."""

import os

import numpy as np
import pytest

from seg_perception.data.synthetic.generator import SceneGenerator
from seg_perception.labels import cityscapes
from seg_perception.training import frames
from seg_perception.training.frames import cache_key, cache_subdirectory, FrameSource


def source(seed, count=3):
    return FrameSource('synthetic', 'train', 64, 32, seed, count, cityscapes())


def assert_frames_of_seed(cached, seed, count=3):
    generator = SceneGenerator(64, 32, seed)
    for index in range(count):
        expected = generator.generate(index)
        assert np.array_equal(cached[index].image, expected.image)
        assert np.array_equal(cached[index].instance, expected.instance)


def test_each_seed_has_its_own_cache_and_reuses_it(tmp_path):
    logs = []
    first = source(3)
    first.materialize(str(tmp_path), workers=0, log=logs.append)
    second = source(4)
    second.materialize(str(tmp_path), workers=0, log=logs.append)
    assert len(os.listdir(tmp_path)) == 2
    assert_frames_of_seed(first, 3)
    assert_frames_of_seed(second, 4)
    again = source(3)
    again.materialize(str(tmp_path), workers=0, log=logs.append)
    assert logs[-1].startswith('using frame cache')
    assert_frames_of_seed(again, 3)


def test_the_key_names_seed_count_size_and_generator(monkeypatch):
    key = cache_key(3, 10, 64, 32)
    assert set(key) == {'seed', 'count', 'width', 'height', 'generator'}
    assert os.path.basename(cache_subdirectory('c', key)).startswith('seed3_n10_64x32_gen')
    monkeypatch.setattr(frames, 'generator_fingerprint', lambda: 'changed')
    assert cache_key(3, 10, 64, 32) != key


def test_a_killed_generation_is_never_trusted(tmp_path, monkeypatch):
    complete = source(3)
    complete.materialize(str(tmp_path), workers=0, log=lambda *_: None)
    real = frames._generate_into_cache

    def killed_after_one_frame(job):
        directory, count, width, height, seed, start, _ = job
        real((directory, count, width, height, seed, start, start + 1))
        raise KeyboardInterrupt  # the run is killed mid-generation

    monkeypatch.setattr(frames, '_generate_into_cache', killed_after_one_frame)
    with pytest.raises(KeyboardInterrupt):
        source(4).materialize(str(tmp_path), workers=0, log=lambda *_: None)
    monkeypatch.setattr(frames, '_generate_into_cache', real)
    partial = cache_subdirectory(str(tmp_path), cache_key(4, 3, 64, 32))
    assert os.path.isdir(partial) and not os.path.exists(os.path.join(partial, 'complete.json'))
    logs = []
    rerun = source(4)
    rerun.materialize(str(tmp_path), workers=0, log=logs.append)
    assert any('incomplete; generating it again' in line for line in logs)
    assert_frames_of_seed(rerun, 4)
    reused = source(3)  # the complete cache of seed 3 was left as it was
    reused.materialize(str(tmp_path), workers=0, log=logs.append)
    assert logs[-1].startswith('using frame cache')
    assert_frames_of_seed(reused, 3)


def test_a_marker_of_other_frames_is_not_trusted(tmp_path):
    made = source(3)
    made.materialize(str(tmp_path), workers=0, log=lambda *_: None)
    directory = cache_subdirectory(str(tmp_path), cache_key(3, 3, 64, 32))
    with open(os.path.join(directory, 'complete.json'), 'w') as stream:
        stream.write('{"seed": 4}')
    logs = []
    source(3).materialize(str(tmp_path), workers=0, log=logs.append)
    assert any('generating it again' in line for line in logs)
