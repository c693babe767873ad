"""The model package manifest: what every backend, the Segmenter and the node read.

A model package is a directory::

    model.onnx        graph with fused post-processing (see ``export.onnx_export``)
    manifest.yaml     this file's ``ModelManifest``
    weights.pt        optional torch state dict (needed only by the torch backend / training)
    MODEL_CARD.md     optional: how it was trained and how well it does

Graph contract (the ONNX file and every backend):

    inputs
      image             float32 (B, 3, H, W), RGB, raw 0..255 (normalisation is in the graph)
      center_threshold  float32 (1,)  -- panoptic graphs only
    outputs
      semantic          int32   (B, H, W) train ids
      confidence        float32 (B, H, W) softmax probability of the chosen class
      instance          int32   (B, H, W) 0 = no instance, else 1..top_k   -- panoptic only
      panoptic          int32   (B, H, W) class * label_divisor + instance -- panoptic only
      instance_score    float32 (B, top_k) centre score of instance id k+1 (0 = unused)
                                                                              -- panoptic only
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
import math
import numbers
import os
import re
from typing import Any, Dict, Optional, Tuple

from .labels import cityscapes, LabelSet, LabelSetError
from .packages.atomic import atomic_write_text

MANIFEST_FILE = 'manifest.yaml'
FORMAT_VERSION = 1
TASK_CHOICES = ('semantic', 'panoptic')

SEMANTIC_OUTPUTS = ('semantic', 'confidence')
PANOPTIC_OUTPUTS = ('semantic', 'confidence', 'instance', 'panoptic', 'instance_score')


#: Keys ``to_dict`` writes that are not fields: derived from the fields, checked on reading
#: (``num_classes``: the label set's class count when the graph was made with it).
DERIVED_KEYS = ('num_classes', 'outputs', 'inputs')
_SHA256 = re.compile(r'^[0-9a-f]{64}$')


class ManifestError(ValueError):
    """A model package or its manifest is missing, corrupt or inconsistent."""


def _is_int(value: Any) -> bool:
    """True for Python and numpy integers, false for booleans (``True == 1``), floats, text."""
    return isinstance(value, numbers.Integral) and type(value).__name__ not in ('bool', 'bool_')


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and type(value).__name__ not in ('bool', 'bool_') \
        and math.isfinite(value)


def _check_file_name(name: str, value: Any, optional: bool = False) -> None:
    """A file of the package: a relative path inside it (``None`` too when ``optional``)."""
    if optional and value is None:
        return
    if not isinstance(value, str) or not value or os.path.isabs(value) \
            or '..' in value.replace('\\', '/').split('/'):
        raise ManifestError(f'{name} must be a file name inside the package, got {value!r}')


@dataclass
class PostprocessSettings:
    """Panoptic-DeepLab post-processing settings (defaults from the paper).

    ``stuff_area``, ``min_instance_area``, ``min_center_votes`` and ``center_vote_radius`` are
    in pixels of the network input. The last three fields are this project's additions to
    Panoptic-DeepLab's grouping (see ``postprocess``); their defaults switch them off, so a
    manifest without them behaves as before:

    * ``min_center_votes``: a centre is kept only when at least this many thing pixels have
      offsets pointing within ``center_vote_radius`` of it (drops centres that no pixel
      votes for: the heatmap's second peaks on one large car);
    * ``class_aware_grouping``: a thing pixel joins the nearest centre of its own class when
      there is one (so a person beside a car is not swallowed by the car's instance).
    """

    center_threshold: float = 0.1
    nms_kernel: int = 7
    top_k: int = 200
    stuff_area: int = 2048
    min_instance_area: int = 0
    grouping_stride: int = 4
    min_center_votes: int = 0
    center_vote_radius: int = 8
    class_aware_grouping: bool = False


def check_postprocess_types(settings: PostprocessSettings) -> None:
    """Raise ``ManifestError`` naming the field when a setting has the wrong type (a
    hand-edited ``class_aware_grouping: "no"`` would otherwise read as true)."""
    for setting in fields(PostprocessSettings):
        value, default = getattr(settings, setting.name), setting.default
        is_bool = type(value).__name__ in ('bool', 'bool_')  # numpy's bool is no bool
        if isinstance(default, bool):
            valid, expected = is_bool, 'true or false'
        elif isinstance(default, int):
            valid, expected = isinstance(value, numbers.Integral) and not is_bool, 'an integer'
        else:
            valid, expected = isinstance(value, numbers.Real) and not is_bool, 'a number'
        if not valid:
            raise ManifestError(f'postprocess.{setting.name} must be {expected}, got {value!r}')


@dataclass
class ModelManifest:
    """Self-description of an exported model.

    Attributes:
        name: Package name (``enet_panoptic``).
        architecture: Registry name of the torch network (``enet``).
        architecture_kwargs: Extra keyword arguments the registry builder was called with.
        task: ``semantic`` or ``panoptic``.
        input_height, input_width: Network input size in pixels.
        batch: Static batch size of the graph.
        mean, std: Per-channel normalisation on 0..1 RGB (applied inside the graph).
        channel_order: Always ``RGB`` for graphs made here.
        label_set: Classes, colours and thing ids.
        label_divisor: Panoptic id = class * label_divisor + instance.
        postprocess: Post-processing settings baked into (or fed to) the graph.
        flip_test: Whether the graph averages the semantic logits with those of the
            left-right mirrored image (test-time flip; the network runs on both, as one
            batch of 2B). Centre and offset heads come from the image as given.
        onnx_file, weights_file: File names inside the package directory.
        onnx_sha256: Checksum of the ONNX file (engine cache key, corruption check).
        opset: ONNX opset of the graph.
        info: Free-form provenance (training command, metrics, ...).
    """

    name: str
    architecture: str
    task: str
    input_height: int
    input_width: int
    batch: int = 1
    architecture_kwargs: Dict[str, Any] = field(default_factory=dict)
    mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: Tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = 'RGB'
    label_set: LabelSet = field(default_factory=cityscapes)
    label_divisor: int = 1000
    postprocess: PostprocessSettings = field(default_factory=PostprocessSettings)
    flip_test: bool = False
    onnx_file: str = 'model.onnx'
    weights_file: Optional[str] = None
    onnx_sha256: Optional[str] = None
    opset: int = 17
    info: Dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self._check_types()
        if self.task not in TASK_CHOICES:
            raise ManifestError(f'task {self.task!r} is not one of {", ".join(TASK_CHOICES)}')
        if self.input_height <= 0 or self.input_width <= 0 or self.batch <= 0:
            raise ManifestError(
                f'input size {self.input_width}x{self.input_height} batch {self.batch} '
                'must be positive')
        if self.postprocess.top_k >= self.label_divisor:
            raise ManifestError(
                f'top_k {self.postprocess.top_k} must be below label_divisor {self.label_divisor}')
        check_postprocess_types(self.postprocess)
        if type(self.flip_test).__name__ not in ('bool', 'bool_'):
            raise ManifestError(f'flip_test must be true or false, got {self.flip_test!r}')

    def _check_types(self) -> None:
        """Every field strictly typed; ``ManifestError`` names the first that is not."""
        for name in ('name', 'architecture', 'task'):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ManifestError(f'{name} must be a non-empty string, got {value!r}')
        for name in ('input_height', 'input_width', 'batch', 'label_divisor', 'opset',
                     'format_version'):
            if not _is_int(getattr(self, name)):
                raise ManifestError(f'{name} must be an integer, got {getattr(self, name)!r}')
        if self.label_divisor <= 0:
            raise ManifestError(f'label_divisor must be positive, got {self.label_divisor}')
        for name in ('mean', 'std'):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 3 \
                    or not all(_is_real(v) for v in value):
                raise ManifestError(f'{name} must be three finite numbers (R, G, B), got '
                                    f'{value!r}')
        if not all(v > 0 for v in self.std):
            raise ManifestError(f'std must be positive, got {list(self.std)!r}')
        if self.channel_order != 'RGB':
            raise ManifestError(f'channel_order must be RGB (the graph contract), got '
                                f'{self.channel_order!r}')
        if not isinstance(self.architecture_kwargs, dict) \
                or not all(isinstance(k, str) for k in self.architecture_kwargs):
            raise ManifestError(f'architecture_kwargs must be a mapping of argument names, got '
                                f'{self.architecture_kwargs!r}')
        for key in ('num_classes', 'panoptic'):
            if key in self.architecture_kwargs:
                raise ManifestError(f'architecture_kwargs may not set {key} (the label set and '
                                    'task give it)')
        if not isinstance(self.label_set, LabelSet):
            raise ManifestError(f'label_set must be a LabelSet, got {type(self.label_set)}')
        if not isinstance(self.postprocess, PostprocessSettings):
            raise ManifestError(f'postprocess must be PostprocessSettings, got '
                                f'{type(self.postprocess)}')
        _check_file_name('onnx_file', self.onnx_file)
        _check_file_name('weights_file', self.weights_file, optional=True)
        if self.onnx_sha256 is not None and (not isinstance(self.onnx_sha256, str)
                                             or not _SHA256.match(self.onnx_sha256)):
            raise ManifestError(f'onnx_sha256 must be 64 lower-case hex digits, got '
                                f'{self.onnx_sha256!r}')
        if not isinstance(self.info, dict):
            raise ManifestError(f'info must be a mapping, got {self.info!r}')

    @property
    def is_panoptic(self) -> bool:
        return self.task == 'panoptic'

    @property
    def output_names(self) -> Tuple[str, ...]:
        return PANOPTIC_OUTPUTS if self.is_panoptic else SEMANTIC_OUTPUTS

    @property
    def input_names(self) -> Tuple[str, ...]:
        return ('image', 'center_threshold') if self.is_panoptic else ('image',)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data['label_set'] = self.label_set.to_dict()
        data['mean'] = [float(v) for v in self.mean]
        data['std'] = [float(v) for v in self.std]
        data['num_classes'] = self.label_set.num_classes
        data['outputs'] = list(self.output_names)
        data['inputs'] = list(self.input_names)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any], source: str = '<dict>') -> 'ModelManifest':
        """Build a manifest from the mapping of ``manifest.yaml``, strictly typed.

        Raises:
            ManifestError: One line naming ``source`` and the field (an unknown key, a
                wrong type, or a label set whose class count differs from the recorded
                ``num_classes``).
        """
        if not isinstance(data, dict):
            raise ManifestError(f'{source}: manifest is not a mapping')
        data = dict(data)
        derived = {key: data.pop(key) for key in DERIVED_KEYS if key in data}
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ManifestError(f'{source}: unknown key {unknown[0]!r} in the manifest')
        version = data.get('format_version', FORMAT_VERSION)
        if not _is_int(version) or version != FORMAT_VERSION:
            raise ManifestError(
                f'{source}: manifest format {version} is not supported '
                f'(expected {FORMAT_VERSION})')
        missing = [k for k in ('name', 'architecture', 'task', 'input_height', 'input_width')
                   if k not in data]
        if missing:
            raise ManifestError(f'{source}: manifest lacks {", ".join(missing)}')
        try:
            data['label_set'] = LabelSet.from_dict(data.get('label_set') or {}, source=source) \
                if 'label_set' in data else cityscapes()
            postprocess = data.get('postprocess') or {}
            if not isinstance(postprocess, dict):
                raise ManifestError(f'postprocess must be a mapping, got {postprocess!r}')
            unknown = sorted(str(key) for key in postprocess
                             if key not in {f.name for f in fields(PostprocessSettings)})
            if unknown:
                raise ManifestError(f'unknown key {unknown[0]!r} in postprocess')
            data['postprocess'] = PostprocessSettings(**postprocess)
            for name in ('mean', 'std'):
                if isinstance(data.get(name), list):
                    data[name] = tuple(data[name])
            manifest = cls(**data)
        except LabelSetError as error:
            raise ManifestError(str(error)) from None
        except (ManifestError, TypeError) as error:
            raise ManifestError(f'{source}: {error}') from None
        recorded = derived.get('num_classes', manifest.label_set.num_classes)
        if recorded != manifest.label_set.num_classes or not _is_int(recorded):
            raise ManifestError(
                f'{source}: label set {manifest.label_set.name!r} has '
                f'{manifest.label_set.num_classes} classes but the graph was made for '
                f'num_classes {recorded!r}; class names would be shifted')
        return manifest

    def save(self, directory: str) -> str:
        """Write ``directory/manifest.yaml`` atomically; returns its path."""
        import yaml
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, MANIFEST_FILE)
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path

    @classmethod
    def load(cls, directory: str) -> 'ModelManifest':
        """Read a package's manifest; raises ``ManifestError`` naming the file and problem."""
        import yaml
        path = os.path.join(directory, MANIFEST_FILE)
        if not os.path.isdir(directory):
            raise ManifestError(f'model package {directory} does not exist or is not a directory')
        if not os.path.isfile(path):
            raise ManifestError(f'model package {directory} has no {MANIFEST_FILE}')
        try:
            with open(path, 'r', encoding='utf-8') as stream:
                data = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise ManifestError(f'{path} is corrupt (not valid YAML): {error}') from None
        return cls.from_dict(data, source=path)

    def onnx_path(self, directory: str) -> str:
        return os.path.join(directory, self.onnx_file)
