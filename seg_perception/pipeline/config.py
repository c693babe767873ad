"""The node's parameters: one table for the node, the launch file test and the README.

``PARAMETERS`` lists every parameter ``seg_perception_node`` declares, with its type,
default, description, valid choices or range and whether it can change at run time.
``NodeConfig.from_values`` validates a complete set of values (start-up) and
``NodeConfig.updated`` one run-time change; both raise ``ConfigError`` with a message that
names the parameter and its valid choices or range. Nothing here imports rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
import difflib
import math
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ..images.raw import MAX_IMAGE_PIXELS
from ..runtime.base import BACKEND_CHOICES, DEVICE_CHOICES, PRECISION_CHOICES
from .outputs import INSTANCE_ENCODING_CHOICES, OUTPUT_NAMES, OUTPUTS, RenderSettings

TRANSPORT_CHOICES = ('raw', 'compressed')
RELIABILITY_CHOICES = ('auto', 'best_effort', 'reliable')
OUTPUT_RESOLUTION_CHOICES = ('input', 'network')

#: diagnostic_updater's period parameter; NodeConfig field ``diagnostics_period``.
DIAGNOSTICS_PERIOD = 'diagnostic_updater.period'
#: Parameter names of earlier versions -> today's (suggested for an unknown override).
RENAMED_PARAMETERS = {'diagnostics_period': DIAGNOSTICS_PERIOD}
#: Parameters whose NodeConfig field has another name (a field name has no '.').
FIELD_OF_PARAMETER = {DIAGNOSTICS_PERIOD: 'diagnostics_period'}

_NAME_TOKEN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class ConfigError(ValueError):
    """A parameter value is invalid; the message names the parameter and what is valid."""


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter of the node.

    Attributes:
        name: Parameter name.
        type_name: ``string``, ``string_array``, ``bool``, ``integer`` or ``double``.
        default: Default value (a tuple for arrays).
        description: One sentence for ``ros2 param describe`` and the README.
        choices: Valid values of a string parameter (empty = free text).
        minimum, maximum: Inclusive range of a number (None = unbounded on that side).
        read_only: True when a change needs a restart (declared read-only).
    """

    name: str
    type_name: str
    default: Any
    description: str
    choices: Tuple[str, ...] = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    read_only: bool = True

    @property
    def constraint_text(self) -> str:
        """Human-readable valid values, e.g. ``one of raw, compressed`` or ``0.0..1.0``."""
        if self.choices:
            return 'one of ' + ', '.join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f'{self.minimum}..{self.maximum}'
        if self.type_name == 'string_array':
            return 'non-empty list of unique ROS names'
        return ''


def switch_name(output: str) -> str:
    """The parameter that switches an output on or off: ``publish_<output>``."""
    return f'publish_{output}'


def _switches() -> Tuple[ParameterSpec, ...]:
    """One ``publish_<output>`` switch per row of the outputs table."""
    return tuple(ParameterSpec(switch_name(spec.name), 'bool', spec.default,
                               f'Publish <camera>/segmentation/{spec.name} ({spec.content}); '
                               'computed only while subscribed.')
                 for spec in OUTPUTS)


PARAMETERS: Tuple[ParameterSpec, ...] = (
    ParameterSpec('model', 'string', 'enet_panoptic',
                  'Zoo model name (seg-perception models lists them) or the path of an '
                  'exported model package directory.'),
    ParameterSpec('backend', 'string', 'auto',
                  'Inference backend; auto picks TensorRT, then ONNX Runtime, then PyTorch.',
                  choices=BACKEND_CHOICES),
    ParameterSpec('device', 'string', 'auto', 'Device for ONNX Runtime / PyTorch.',
                  choices=DEVICE_CHOICES),
    ParameterSpec('precision', 'string', 'auto',
                  'Numeric precision; auto = fp16 on TensorRT / CUDA torch, else fp32.',
                  choices=PRECISION_CHOICES),
    ParameterSpec('engine_file_path', 'string', '',
                  'TensorRT engine file; empty = cached beside the model package (or in '
                  '~/.cache/seg_perception/engines), named after its key: ONNX checksum, '
                  'TensorRT version, GPU, precision, shapes and the engine_* build options.'),
    ParameterSpec('force_engine_update', 'bool', False,
                  'Rebuild the TensorRT engine from the ONNX even when the cached one matches.'),
    ParameterSpec('allow_engine_build', 'bool', True,
                  'false: never build at start-up (builds take minutes on a Jetson); fail with '
                  'the reason when no matching cached engine exists.'),
    ParameterSpec('build_engine_only', 'bool', False,
                  'Build (or verify) the TensorRT engine, then exit 0 without subscribing.'),
    ParameterSpec('engine_fp32_layers', 'string', '',
                  'TensorRT layer-name patterns kept in FP32 in FP16 / INT8 builds, '
                  "space-separated (as build-engine --fp32-layers, e.g. '/network/decoder*')."),
    ParameterSpec('engine_calib_images_dir', 'string', '',
                  'Folder of camera frames for TensorRT INT8 calibration (precision int8; as '
                  'build-engine --calib-images).'),
    ParameterSpec('engine_onnx_path', 'string', '',
                  "ONNX graph the TensorRT engine is built from instead of the package's (as "
                  'build-engine --onnx, e.g. an FP16 graph for TensorRT 11).'),
    ParameterSpec('threads', 'integer', 0,
                  'ONNX Runtime intra-op threads; 0 = the runtime default.',
                  minimum=0, maximum=256),
    ParameterSpec('cameras', 'string_array', ('camera',),
                  'Camera namespaces; each one is subscribed to and published under.'),
    ParameterSpec('image_topic', 'string', 'image_raw',
                  'Image topic inside each camera namespace (e.g. image_rect_color).'),
    ParameterSpec('input_transport', 'string', 'raw',
                  'raw subscribes to <camera>/<image_topic> (sensor_msgs/Image); compressed to '
                  '<camera>/<image_topic>/compressed (JPEG or PNG CompressedImage).',
                  choices=TRANSPORT_CHOICES),
    ParameterSpec('qos_reliability', 'string', 'auto',
                  'Reliability of the image subscriptions; auto follows the camera publisher '
                  '(reliable when it is reliable, else best effort).',
                  choices=RELIABILITY_CHOICES),
    ParameterSpec('max_image_pixels', 'integer', 1 << 24,
                  "Largest camera image (width * height) accepted, read from the image's header "
                  "before decoding; later frames must keep the size of the camera's first.",
                  minimum=1, maximum=MAX_IMAGE_PIXELS),
    ParameterSpec('output_resolution', 'string', 'input',
                  'input maps the outputs back to the camera image size; network keeps the '
                  'network input size (less bandwidth); next frame.',
                  choices=OUTPUT_RESOLUTION_CHOICES, read_only=False),
    ParameterSpec('instance_encoding', 'string', '32SC1',
                  'Encoding of the instance id image; next frame.',
                  choices=INSTANCE_ENCODING_CHOICES, read_only=False),
    *_switches(),
    ParameterSpec('center_threshold', 'double', -1.0,
                  'Instance centre heatmap threshold (panoptic models), 0..1; negative = the '
                  "model package's own (tuned) value; next frame.",
                  minimum=-1.0, maximum=1.0, read_only=False),
    ParameterSpec('min_instance_area', 'integer', 0,
                  'Instances smaller than this many network-input pixels are dropped; next '
                  'frame.', minimum=0, maximum=1 << 24, read_only=False),
    ParameterSpec('overlay_alpha', 'double', 0.5,
                  'Weight of the class colours in the overlay image; next frame.',
                  minimum=0.0, maximum=1.0, read_only=False),
    ParameterSpec('batch_cameras', 'string', 'auto',
                  'Run the newest frame of every camera in one batched inference; auto = only '
                  'on a GPU backend whose graph batch is above 1; next frame.',
                  choices=('auto', 'true', 'false'), read_only=False),  # or a bool
    ParameterSpec(DIAGNOSTICS_PERIOD, 'double', 1.0,
                  "Seconds between /diagnostics messages (diagnostic_updater's parameter).",
                  minimum=0.1, maximum=60.0),
)

PARAMETERS_BY_NAME: Dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}
RUNTIME_PARAMETERS = tuple(spec.name for spec in PARAMETERS if not spec.read_only)
ENGINE_PARAMETERS = ('engine_file_path', 'force_engine_update', 'allow_engine_build',
                     'build_engine_only', 'engine_fp32_layers', 'engine_calib_images_dir',
                     'engine_onnx_path')


@dataclass(frozen=True)
class NodeConfig:
    """Validated parameter values; replaced (never mutated) on a run-time change.

    Fields are the names of ``PARAMETERS`` (defaults live there only), except that the
    ``publish_<output>`` switches are gathered in ``enabled_outputs`` (the names of the
    outputs switched on, in the order of the outputs table):
    ``NodeConfig.from_values({})`` gives the defaults.
    """

    model: str
    backend: str
    device: str
    precision: str
    engine_file_path: str
    force_engine_update: bool
    allow_engine_build: bool
    build_engine_only: bool
    engine_fp32_layers: str
    engine_calib_images_dir: str
    engine_onnx_path: str
    threads: int
    cameras: Tuple[str, ...]
    image_topic: str
    input_transport: str
    qos_reliability: str
    max_image_pixels: int
    output_resolution: str
    instance_encoding: str
    enabled_outputs: Tuple[str, ...]
    center_threshold: float
    min_instance_area: int
    overlay_alpha: float
    batch_cameras: str
    diagnostics_period: float

    @property
    def center_threshold_override(self) -> Optional[float]:
        """The centre threshold to pass to the Segmenter: None (the package's) when negative."""
        return None if self.center_threshold < 0 else self.center_threshold

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> 'NodeConfig':
        """Validate a mapping of parameter name -> value; missing names take defaults.

        Raises:
            ConfigError: an unknown name or an invalid value (the message names it).
        """
        unknown = sorted(set(values) - set(PARAMETERS_BY_NAME))
        if unknown:
            raise ConfigError(f'unknown parameter(s) {", ".join(unknown)}; valid: '
                              + ', '.join(PARAMETERS_BY_NAME))
        checked = {spec.name: validate_value(spec.name, values.get(spec.name, spec.default))
                   for spec in PARAMETERS}
        config = cls(**_gather_switches(checked))
        if config.backend not in ('auto', 'tensorrt'):
            for name in ENGINE_PARAMETERS:
                if checked[name] != PARAMETERS_BY_NAME[name].default:
                    raise ConfigError(
                        f'parameter {name} applies to the TensorRT backend only; backend is '
                        f'{config.backend!r} (use auto or tensorrt)')
        return config

    def engine_options(self) -> Dict[str, Any]:
        """TensorRT backend options that differ from its defaults (none for other backends)."""
        options: Dict[str, Any] = {}
        if self.engine_file_path:
            options['engine_path'] = self.engine_file_path
        if self.force_engine_update:
            options['force_rebuild'] = True
        if not self.allow_engine_build:
            options['allow_build'] = False
        if self.build_engine_only:
            options['build_only'] = True
        if self.engine_fp32_layers.split():
            options['fp32_layers'] = tuple(self.engine_fp32_layers.split())
        if self.engine_calib_images_dir:
            options['calib_images_dir'] = self.engine_calib_images_dir
        if self.engine_onnx_path:
            options['onnx_path'] = self.engine_onnx_path
        return options

    def updated(self, changes: Mapping[str, Any]) -> 'NodeConfig':
        """A copy with run-time ``changes`` applied.

        Raises:
            ConfigError: a read-only or unknown parameter, or an invalid value.
        """
        checked = {}
        for name, value in changes.items():
            spec = PARAMETERS_BY_NAME.get(name)
            if spec is None:
                raise ConfigError(f'unknown parameter {name!r}')
            if spec.read_only:
                raise ConfigError(f'parameter {name} is read-only (restart the node to change '
                                  'it); run-time parameters: ' + ', '.join(RUNTIME_PARAMETERS))
            checked[name] = validate_value(name, value)
        return replace(self, **checked)  # (diagnostic_updater.period is read-only)

    def publishes(self, output: str) -> bool:
        """Whether the ``publish_<output>`` switch is on."""
        return output in self.enabled_outputs

    @property
    def render_settings(self) -> RenderSettings:
        return RenderSettings(min_instance_area=self.min_instance_area,
                              overlay_alpha=self.overlay_alpha,
                              instance_encoding=self.instance_encoding)

    def as_dict(self) -> Dict[str, Any]:
        """Parameter name -> value, for every parameter (switches included)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name not in ('enabled_outputs', 'diagnostics_period')}
        values[DIAGNOSTICS_PERIOD] = self.diagnostics_period
        values.update({switch_name(name): self.publishes(name) for name in OUTPUT_NAMES})
        return values


def _gather_switches(values: Dict[str, Any]) -> Dict[str, Any]:
    """Parameter values -> NodeConfig fields: the switches become ``enabled_outputs``."""
    fields_ = {name: value for name, value in values.items()
               if not name.startswith('publish_') and name != DIAGNOSTICS_PERIOD}
    fields_['diagnostics_period'] = values[DIAGNOSTICS_PERIOD]
    fields_['enabled_outputs'] = tuple(name for name in OUTPUT_NAMES
                                       if values[switch_name(name)])
    return fields_


def validate_value(name: str, value: Any) -> Any:
    """Check one parameter value against its spec; returns it in canonical form.

    Raises:
        ConfigError: naming the parameter, the bad value and what is valid.
    """
    spec = PARAMETERS_BY_NAME.get(name)
    if spec is None:
        raise ConfigError(f'unknown parameter {name!r}; valid: ' + ', '.join(PARAMETERS_BY_NAME))
    kind = spec.type_name
    if kind == 'string':
        if isinstance(value, bool) and 'true' in spec.choices:  # YAML / -p true and false
            value = 'true' if value else 'false'
        if spec.choices and value not in spec.choices:
            raise ConfigError(
                f'parameter {name} {value!r} is not valid; choose one of '
                + ', '.join(spec.choices))
        if not isinstance(value, str):
            raise ConfigError(f'parameter {name} must be a string, got {value!r}')
        if name == 'model' and not value.strip():
            raise ConfigError('parameter model is empty; give a zoo model name or the path of '
                              'a model package directory')
        if name == 'image_topic':
            _check_ros_name(name, value)
        return value
    if kind == 'bool':
        if not isinstance(value, bool):
            raise ConfigError(f'parameter {name} must be true or false, got {value!r}')
        return value
    if kind == 'string_array':
        return _check_cameras(name, value)
    if kind == 'integer':
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'parameter {name} must be an integer ({spec.constraint_text}), '
                              f'got {value!r}')
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ConfigError(f'parameter {name} must be a number ({spec.constraint_text}), '
                              f'got {value!r}')
        value = float(value)
    if (spec.minimum is not None and value < spec.minimum) or \
            (spec.maximum is not None and value > spec.maximum):
        raise ConfigError(f'parameter {name} = {value} is out of range {spec.constraint_text}')
    return value


def _check_ros_name(parameter: str, name: str) -> None:
    tokens = name.strip('/').split('/') if name.strip('/') else []
    if not tokens or not all(_NAME_TOKEN.match(token) for token in tokens) or '//' in name:
        raise ConfigError(
            f'parameter {parameter}: {name!r} is not a valid ROS name (letters, digits and '
            'underscores, separated by /, not starting with a digit)')


def _check_cameras(parameter: str, value: Any) -> Tuple[str, ...]:
    if value is None:  # rclpy reads an empty list from the command line as "not set"
        value = ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f'parameter {parameter} must be a list of camera namespaces, e.g. '
                          f"['front', 'rear'], got {value!r}")
    cameras: List[str] = list(value)
    if not cameras:
        raise ConfigError(f'parameter {parameter} is empty; give at least one camera namespace, '
                          "e.g. ['front', 'rear']")
    for camera in cameras:
        if not isinstance(camera, str):
            raise ConfigError(f'parameter {parameter}: {camera!r} is not a string')
        _check_ros_name(parameter, camera)
    normalised = [camera.strip('/') for camera in cameras]
    duplicates = sorted({c for c in normalised if normalised.count(c) > 1})
    if duplicates:
        raise ConfigError(f'parameter {parameter} names {", ".join(duplicates)} more than once')
    return tuple(cameras)


def closest_parameter(name: str) -> Optional[str]:
    """The declared parameter an unknown ``name`` most likely meant, or None."""
    if name in RENAMED_PARAMETERS:
        return RENAMED_PARAMETERS[name]
    matches = difflib.get_close_matches(name, list(PARAMETERS_BY_NAME), n=1, cutoff=0.6)
    return matches[0] if matches else None


def model_is_path(model: str) -> bool:
    """Whether ``model`` names a package directory rather than a zoo model."""
    return '/' in model or model.startswith(('.', '~')) or model.endswith('.yaml')


def markdown_table() -> str:
    """The README's parameter table (Markdown)."""
    lines = ['| parameter | type | default | valid | run time | description |',
             '|---|---|---|---|---|---|']
    for spec in PARAMETERS:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        default_text = str(default).lower() if isinstance(default, bool) else repr(default)
        lines.append(f'| `{spec.name}` | {spec.type_name} | `{default_text}` | '
                     f'{spec.constraint_text} | {"no" if spec.read_only else "yes"} | '
                     f'{spec.description.replace("<", "&lt;")} |')
    return '\n'.join(lines)
