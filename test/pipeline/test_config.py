"""pipeline/config.py: the node's parameter table, validation, run-time updates, descriptors,
model path detection and engine options."""

from dataclasses import fields
import inspect

import pytest

from seg_perception.pipeline.config import (
    ConfigError,
    FIELD_OF_PARAMETER,
    markdown_table,
    model_is_path,
    NodeConfig,
    PARAMETERS,
    PARAMETERS_BY_NAME,
)
from seg_perception.pipeline.outputs import OUTPUT_NAMES


def test_config_fields_are_the_parameter_table():
    switches = [spec.name for spec in PARAMETERS if spec.name.startswith('publish_')]
    assert switches == [f'publish_{name}' for name in OUTPUT_NAMES]
    names = [spec.name for spec in PARAMETERS]
    first = names.index(switches[0])
    expected = names[:first] + ['enabled_outputs'] + names[first + len(switches):]
    expected = [FIELD_OF_PARAMETER.get(name, name) for name in expected]
    assert [f.name for f in fields(NodeConfig)] == expected
    defaults = NodeConfig.from_values({})
    for spec in PARAMETERS:
        assert defaults.as_dict()[spec.name] == spec.default, spec.name
    assert NodeConfig.from_values({'publish_overlay': False, 'publish_confidence': True}) \
        .enabled_outputs == ('panoptic', 'semantic', 'instance', 'confidence', 'semantic_color',
                             'panoptic_color', 'camera_info', 'detections')


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
    ('batch_cameras', 'yes', "parameter batch_cameras 'yes' is not valid; choose one of auto, "
                             'true, false'),
    ('publish_overlay', 'yes', 'must be true or false'),
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


def test_engine_options_reach_only_the_tensorrt_backend():
    from seg_perception.pipeline.config import ConfigError, NodeConfig
    assert NodeConfig.from_values({}).engine_options() == {}
    config = NodeConfig.from_values({'force_engine_update': True, 'allow_engine_build': False,
                                     'engine_file_path': '/var/engines/front.engine'})
    assert config.engine_options() == {'force_rebuild': True, 'allow_build': False,
                                       'engine_path': '/var/engines/front.engine'}
    with pytest.raises(ConfigError, match='engine_file_path applies to the TensorRT backend'):
        NodeConfig.from_values({'backend': 'torch', 'engine_file_path': 'x.engine'})


def test_engine_build_options_reach_the_tensorrt_backend():
    """The node can use an engine built with build-engine's options (issue 27 item 3)."""
    from seg_perception.pipeline.config import ConfigError, NodeConfig
    from seg_perception.runtime.tensorrt_backend import TensorRTBackend
    config = NodeConfig.from_values({
        'precision': 'int8', 'engine_fp32_layers': ' /network/decoder*  /network/*instance/* ',
        'engine_calib_images_dir': '/data/frames', 'engine_onnx_path': '/data/fp16.onnx'})
    options = config.engine_options()
    assert options == {'fp32_layers': ('/network/decoder*', '/network/*instance/*'),
                       'calib_images_dir': '/data/frames', 'onnx_path': '/data/fp16.onnx'}
    assert set(options) <= set(inspect.signature(TensorRTBackend).parameters)
    for name in ('engine_fp32_layers', 'engine_calib_images_dir', 'engine_onnx_path'):
        with pytest.raises(ConfigError, match=f'{name} applies to the TensorRT backend'):
            NodeConfig.from_values({'backend': 'onnxruntime', name: 'x'})


def test_closest_parameter_names_what_a_typo_meant():
    from seg_perception.pipeline.config import closest_parameter
    assert closest_parameter('camera') == 'cameras'
    assert closest_parameter('imagetopic') == 'image_topic'
    assert closest_parameter('diagnostics_period') == 'diagnostic_updater.period'
    assert closest_parameter('zzzz') is None


def test_diagnostic_updater_period_is_the_period_parameter():
    from seg_perception.pipeline.config import NodeConfig
    config = NodeConfig.from_values({'diagnostic_updater.period': 2.5})
    assert config.diagnostics_period == 2.5
    assert config.as_dict()['diagnostic_updater.period'] == 2.5
