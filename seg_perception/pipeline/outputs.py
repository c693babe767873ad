"""The node's outputs: ONE table, the per-frame rendering, and ROS-free output helpers.

``OUTPUTS`` lists every topic the node can publish under ``<camera>/segmentation/``, in
publishing order (the maps first, the pictures for people last). The node's publishers and
``publish_<name>`` switches, the evaluator's output bag, the demo's recorder and the node
benchmark all read it: adding an output is one row here (plus its renderer).

``render_outputs`` turns one ``SegmentationResult`` into the image arrays someone wants;
``drop_small_instances`` applies the run-time ``min_instance_area``; ``scale_camera_info``
(from ``camera_geometry``) gives a camera_info for the output size; ``detection_boxes``
lists the instances for the ``detections`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TYPE_CHECKING

import numpy as np

from ..images.visualize import overlay, PanopticColorizer, semantic_color
from ..labels import LabelSet
from .camera_geometry import scale_camera_info  # noqa: F401 - re-exported

if TYPE_CHECKING:  # the table is read by light modules (parameters, launch); no cv2 / torch
    from ..segmenter import SegmentationResult

IMAGE_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
DETECTIONS_TYPE = 'vision_msgs/msg/Detection2DArray'
INSTANCE_ENCODING_CHOICES = ('32SC1', 'mono16')


@dataclass(frozen=True)
class RenderSettings:
    """The run-time settings rendering reads (the node's parameters of the same names).

    Attributes:
        min_instance_area: Instances smaller than this many network-input pixels are dropped.
        overlay_alpha: Weight of the class colours in the overlay, 0..1.
        instance_encoding: ``32SC1`` (int32 ids) or ``mono16`` (uint16 ids).
    """

    min_instance_area: int = 0
    overlay_alpha: float = 0.5
    instance_encoding: str = '32SC1'


class _FrameRender:
    """What the renderers of one frame share: inputs, and the semantic colours once."""

    def __init__(self, image: np.ndarray, result: SegmentationResult,
                 settings: RenderSettings, label_set: LabelSet,
                 colorizer: Optional[PanopticColorizer]) -> None:
        self.image = image
        self.result = result
        self.settings = settings
        self.label_set = label_set
        self._colorizer = colorizer
        self._semantic_colors: Optional[np.ndarray] = None

    @property
    def colorizer(self) -> PanopticColorizer:
        """The panoptic colour table, built here only when none (or a stale one) was given."""
        if self._colorizer is None or \
                self._colorizer.label_divisor != self.result.label_divisor:
            self._colorizer = PanopticColorizer(self.label_set, self.result.label_divisor)
        return self._colorizer

    @property
    def semantic_colors(self) -> np.ndarray:
        """uint8 (h, w, 3) class colours, computed on first use."""
        if self._semantic_colors is None:
            self._semantic_colors = semantic_color(self.result.semantic, self.label_set)
        return self._semantic_colors

    def image_at_output_size(self) -> np.ndarray:
        """The input image resized (area interpolation) to the maps' (h, w) when they differ."""
        out_h, out_w = self.result.output_size
        if tuple(self.image.shape[:2]) == (out_h, out_w):
            return self.image
        import cv2
        return cv2.resize(np.ascontiguousarray(self.image), (out_w, out_h),
                          interpolation=cv2.INTER_AREA)


Renderer = Callable[[_FrameRender], np.ndarray]


@dataclass(frozen=True)
class OutputSpec:
    """One output topic of the node.

    Attributes:
        name: Topic leaf under ``<camera>/segmentation/`` and ``publish_<name>`` switch.
        message_type: ROS message type name.
        encoding: ``sensor_msgs/Image`` encoding of an image output ('' otherwise).
        default: Default of the ``publish_<name>`` switch.
        content: A phrase saying what it holds (parameter description, README).
        render: Builds the image array of one frame; None for outputs that are messages
            built by the node (camera_info, detections).
        needs: A ROS package the output needs beyond sensor_msgs ('' = none).
    """

    name: str
    message_type: str
    encoding: str
    default: bool
    content: str
    render: Optional[Renderer] = field(default=None, compare=False)
    needs: str = ''

    @property
    def is_image(self) -> bool:
        return self.render is not None

    def encoding_of(self, array: np.ndarray) -> str:
        """The encoding of a rendered array (instance ids may be rendered as uint16)."""
        return 'mono16' if self.name == 'instance' and array.dtype.itemsize == 2 \
            else self.encoding


def _instance(frame: _FrameRender) -> np.ndarray:
    dtype = np.uint16 if frame.settings.instance_encoding == 'mono16' else np.int32
    return frame.result.instance.astype(dtype, copy=False)


def _overlay(frame: _FrameRender) -> np.ndarray:
    return overlay(frame.image_at_output_size(), frame.semantic_colors,
                   frame.settings.overlay_alpha)


OUTPUTS: Tuple[OutputSpec, ...] = (
    OutputSpec('panoptic', IMAGE_TYPE, '32SC1', True, '32SC1 class * label_divisor + instance',
               lambda frame: frame.result.panoptic),
    OutputSpec('semantic', IMAGE_TYPE, 'mono8', True, 'mono8 train ids',
               lambda frame: frame.result.semantic),
    OutputSpec('instance', IMAGE_TYPE, '32SC1', True, '32SC1 or mono16 instance ids, 0 = none',
               _instance),
    OutputSpec('confidence', IMAGE_TYPE, '32FC1', False,
               '32FC1 probability of the chosen class',
               lambda frame: frame.result.confidence.astype(np.float32, copy=False)),
    OutputSpec('semantic_color', IMAGE_TYPE, 'rgb8', True, 'rgb8 class colours',
               lambda frame: frame.semantic_colors),
    OutputSpec('overlay', IMAGE_TYPE, 'rgb8', True, 'rgb8 class colours blended on the input',
               _overlay),
    OutputSpec('panoptic_color', IMAGE_TYPE, 'rgb8', True, 'rgb8, one colour per instance',
               lambda frame: frame.colorizer(frame.result.panoptic)),
    OutputSpec('camera_info', CAMERA_INFO_TYPE, '', True,
               '<camera>/camera_info scaled to the output resolution'),
    OutputSpec('detections', DETECTIONS_TYPE, '', True,
               'vision_msgs/Detection2DArray, when vision_msgs is installed',
               needs='vision_msgs'),
)
OUTPUTS_BY_NAME: Dict[str, OutputSpec] = {spec.name: spec for spec in OUTPUTS}
OUTPUT_NAMES: Tuple[str, ...] = tuple(OUTPUTS_BY_NAME)
IMAGE_OUTPUT_NAMES: Tuple[str, ...] = tuple(spec.name for spec in OUTPUTS if spec.is_image)
#: What every ROS 2 installation can carry: all outputs but those needing an extra package.
PLAIN_OUTPUT_NAMES: Tuple[str, ...] = tuple(spec.name for spec in OUTPUTS if not spec.needs)
#: What the node publishes with default parameters on every ROS 2 installation.
DEFAULT_OUTPUT_NAMES: Tuple[str, ...] = tuple(spec.name for spec in OUTPUTS
                                              if spec.default and not spec.needs)


def output_topic(camera: str, output: str) -> str:
    """``<camera>/segmentation/<output>`` (relative when ``camera`` is)."""
    return f'{camera}/segmentation/{output}'


@dataclass
class FrameOutputs:
    """What one frame produced.

    Attributes:
        result: The full ``SegmentationResult`` (after ``min_instance_area``; segments for
            detections, timing).
        output_hw: (h, w) of the maps.
        images: Output name -> rendered array, only for the outputs somebody wants:
            semantic uint8 (h, w); confidence float32 (h, w); instance int32 or uint16
            (h, w); panoptic int32 (h, w); semantic_color, overlay, panoptic_color uint8
            (h, w, 3) RGB.
    """

    result: SegmentationResult
    output_hw: Tuple[int, int]
    images: Dict[str, np.ndarray] = field(default_factory=dict)


def render_outputs(image: np.ndarray, result: SegmentationResult, settings: RenderSettings,
                   label_set: LabelSet, network_hw: Tuple[int, int],
                   wants: Callable[[str], bool],
                   colorizer: Optional[PanopticColorizer] = None) -> FrameOutputs:
    """Apply the run-time filters and render the wanted image outputs of one frame.

    Args:
        image: uint8 (H, W, 3) RGB input frame (for the overlay).
        result: The Segmenter's result for ``image``.
        settings: min_instance_area, overlay_alpha, instance_encoding.
        label_set: For the class colours.
        network_hw: (height, width) of the network input (scales ``min_instance_area``).
        wants: ``wants(output)`` -> whether to compute that output now.
        colorizer: Reused panoptic colour table (built here, if needed, when None or stale).
    """
    result = drop_small_instances(result, settings.min_instance_area, network_hw)
    frame = _FrameRender(image, result, settings, label_set, colorizer)
    outputs = FrameOutputs(result=result, output_hw=tuple(result.output_size))
    for spec in OUTPUTS:
        if spec.is_image and wants(spec.name):
            outputs.images[spec.name] = spec.render(frame)
    return outputs


def drop_small_instances(result: SegmentationResult, min_area_network: int,
                         network_hw: Tuple[int, int]) -> SegmentationResult:
    """Remove instances smaller than ``min_area_network`` network-input pixels.

    The area is measured on the result's maps and compared with the threshold scaled from
    the network size to the output size. A removed instance's pixels keep their class:
    ``instance`` becomes 0 and ``panoptic`` becomes ``class * label_divisor``, exactly what
    the graph gives thing pixels that no centre claimed.

    Args:
        result: A ``SegmentationResult`` (not modified).
        min_area_network: Threshold in pixels at network resolution; 0 keeps everything.
        network_hw: (height, width) of the network input.

    Returns:
        ``result`` itself when nothing is removed, else a copy with new ``instance`` and
        ``panoptic`` int32 (H, W) maps (its cached segments cleared).
    """
    if min_area_network <= 0 or not result.instance.any():
        return result
    out_h, out_w = result.output_size
    scale = (out_h * out_w) / float(network_hw[0] * network_hw[1])
    threshold = min_area_network * scale
    instance = result.instance
    areas = np.bincount(instance.ravel(), minlength=1)
    small = areas < threshold
    small[0] = False
    small &= areas > 0
    if not small.any():
        return result
    removed = small[instance]
    new_instance = np.where(removed, 0, instance).astype(np.int32)
    new_panoptic = np.where(removed, result.panoptic - instance, result.panoptic).astype(np.int32)
    return replace(result, instance=new_instance, panoptic=new_panoptic, _segments=None)


@dataclass(frozen=True)
class DetectionBox:
    """One instance as a 2-D detection, in output-image pixels.

    Attributes:
        id: Panoptic id of the instance (class * label_divisor + instance).
        class_id: Train id.
        class_name: Label set name of the class.
        score: Instance centre score (or mean confidence when the model has none).
        center_x, center_y, width, height: Axis-aligned box covering the instance's pixels.
    """

    id: int
    class_id: int
    class_name: str
    score: float
    center_x: float
    center_y: float
    width: float
    height: float


def detection_boxes(result: SegmentationResult,
                    class_names: Sequence[str]) -> List[DetectionBox]:
    """One box per instance (thing segment with instance id > 0) of ``result``."""
    boxes = []
    for segment in result.segments:
        if segment.id % result.label_divisor == 0:
            continue
        x, y, width, height = segment.bbox
        boxes.append(DetectionBox(
            id=int(segment.id), class_id=int(segment.category_id),
            class_name=class_names[segment.category_id], score=float(segment.score),
            center_x=x + width / 2.0, center_y=y + height / 2.0, width=float(width),
            height=float(height)))
    return boxes
