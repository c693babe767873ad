"""The RViz config a launch generates: the launched cameras' images in the camera's frame."""

import os

import pytest
import yaml

from seg_perception.pipeline.outputs import OUTPUT_NAMES
from seg_perception.tools.rviz_config import (
    launch_view,
    main,
    node_parameters,
    rviz_config,
    RvizView,
    write_rviz_config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(ROOT, 'config')


def shown(config):
    """(display name, topic) of every display, and the Fixed Frame."""
    manager = config['Visualization Manager']
    return ([(d['Name'], d['Topic']['Value']) for d in manager['Displays']],
            manager['Global Options']['Fixed Frame'])


def test_default_camera_in_its_optical_frame():
    displays, frame = shown(rviz_config(RvizView()))
    assert displays == [('camera Overlay', '/camera/segmentation/overlay'),
                        ('camera Semantic', '/camera/segmentation/semantic_color'),
                        ('camera Panoptic', '/camera/segmentation/panoptic_color')]
    assert frame == 'camera_optical_frame'
    for _, topic in displays:
        assert topic.rsplit('/', 1)[1] in OUTPUT_NAMES


def test_cameras_namespace_remappings_and_frame_are_followed():
    view = RvizView(cameras=('front', 'side/left', '/rear'), namespace='/robot1/',
                    fixed_frame='base_link', outputs=['overlay'],
                    remappings=(('front/segmentation/overlay', '/viz/front'),))
    displays, frame = shown(rviz_config(view))
    assert displays == [('robot1/front Overlay', '/viz/front'),
                        ('robot1/side/left Overlay', '/robot1/side/left/segmentation/overlay'),
                        ('rear Overlay', '/rear/segmentation/overlay')]
    assert frame == 'base_link'
    assert shown(rviz_config(RvizView(cameras=('side/left',))))[1] == 'side_left_optical_frame'
    geometry = rviz_config(view)['Window Geometry']
    assert all(name in geometry for name, _ in displays)


def test_launch_view_reads_the_params_file_and_overrides(tmp_path):
    params = tmp_path / 'p.yaml'
    params.write_text(yaml.safe_dump({
        '/**': {'ros__parameters': {'cameras': ['a', 'b'], 'publish_overlay': False}},
        'seg_perception': {'ros__parameters': {'publish_panoptic_color': False}},
        'other_node': {'ros__parameters': {'cameras': ['x']}}}))
    values = node_parameters(str(params), 'seg_perception', '')
    assert values == {'cameras': ['a', 'b'], 'publish_overlay': False,
                      'publish_panoptic_color': False}
    displays, frame = shown(rviz_config(launch_view(values)))
    assert displays == [('a Semantic', '/a/segmentation/semantic_color'),
                        ('b Semantic', '/b/segmentation/semantic_color')]
    assert frame == 'a_optical_frame'
    displays, _ = shown(rviz_config(launch_view({**values, 'cameras': ['front']}, 'ns')))
    assert displays == [('ns/front Semantic', '/ns/front/segmentation/semantic_color')]
    assert node_parameters('', 'seg_perception') == {}
    with pytest.raises(ValueError, match='params file .*missing.yaml'):
        node_parameters(str(tmp_path / 'missing.yaml'), 'seg_perception')
    with pytest.raises(ValueError, match='publishes none of overlay, semantic_color'):
        rviz_config(launch_view({'publish_overlay': False, 'publish_semantic_color': False,
                                 'publish_panoptic_color': False}))


def test_written_file_is_the_config(tmp_path):
    view = RvizView(cameras=('front',))
    path = write_rviz_config(view, str(tmp_path))
    assert path.endswith('.rviz') and os.path.dirname(path) == str(tmp_path)
    with open(path, 'r', encoding='utf-8') as stream:
        assert yaml.safe_load(stream) == rviz_config(view)


def test_shipped_demo_config_is_generated(capsys):
    assert main(['--cameras', 'front,rear', '--fixed-frame', 'front_optical']) == 0
    generated = yaml.safe_load(capsys.readouterr().out)
    with open(os.path.join(CONFIG_DIR, 'seg_perception.rviz'), 'r', encoding='utf-8') as stream:
        assert yaml.safe_load(stream) == generated, \
            'regenerate config/seg_perception.rviz with the command in its first lines'
