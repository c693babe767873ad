"""Where the evaluator's frames come from: a bag (labels by header stamp, or from a folder)
or a Cityscapes-format folder alone.

A source yields, in recording order, one item per camera image it reads: a ``FrameJob``
(image matched with its ground truth, not yet decoded) or a ``Skip`` saying why that image
will not be evaluated. It also yields ``CopyMessage`` items (camera_info) for the output bag.
``decode_job`` turns a job into an ``EvalFrame`` (decoded pixels) or a ``Skip``; it is pure
and runs in worker threads.

Matching in a bag: an image and its label pair up when their header stamps are equal, in
whichever order they were recorded. An image whose label has not appeared within
``MATCH_WINDOW`` later messages of its camera, or by the end of the bag, is skipped with the
reason ``no label``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
import os
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..bags.bag_io import (
    BagError,
    BagMessage,
    BagReader,
    CAMERA_INFO_TYPE,
    camera_namespace,
    decode_rgb,
    IMAGE_TYPE,
    IMAGE_TYPES,
    normalize_topic,
    stamp_to_ns,
)
from ..bags.ground_truth import check_same_size, decode_label, LabelError
from ..labels import LabelSet

#: Images of one camera that may wait for their label before the oldest is skipped.
MATCH_WINDOW = 64
LABEL_TOPIC_CONVENTIONS = ('labels/panoptic', 'labels/semantic')


@dataclass(frozen=True)
class CameraStream:
    """One camera's topics in the evaluation.

    Attributes:
        namespace: Camera namespace (``/cam0``); outputs go to ``<namespace>/segmentation``.
        image_topic: Input image topic.
        image_type: ``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage``.
        label_topic: Ground-truth topic, or None (labels from a folder, or none).
        camera_info_topic: ``<namespace>/camera_info`` when the bag has it, else None.
        city: Cityscapes city folder of this camera's labels (``--labels-dir``), else None.
    """

    namespace: str
    image_topic: str
    image_type: str
    label_topic: Optional[str] = None
    camera_info_topic: Optional[str] = None
    city: Optional[str] = None


@dataclass
class Skip:
    """An image that is not evaluated.

    Attributes:
        topic: Image topic (or folder city).
        stamp_ns: Header stamp (or frame index in folder mode).
        reason: Short category used for counting (``no label``, ``label size``...).
        detail: Full explanation.
    """

    topic: str
    stamp_ns: int
    reason: str
    detail: str


@dataclass
class CopyMessage:
    """A message copied unchanged into the output bag (camera_info)."""

    stream: CameraStream
    message: BagMessage


@dataclass
class FrameJob:
    """An image matched with its ground truth, not yet decoded."""

    stream: CameraStream
    stamp_ns: int
    log_ns: int
    name: str
    image: Optional[BagMessage] = None
    image_msg: Any = None
    label: Optional[BagMessage] = None
    label_msg: Any = None
    folder_index: Optional[int] = None


@dataclass
class EvalFrame:
    """A decoded frame ready for the Segmenter.

    Attributes:
        rgb: uint8 (H, W, 3) RGB image.
        gt_semantic: uint8 (H, W) train ids, or None without ground truth.
        gt_panoptic: int32 (H, W) panoptic ids, or None when only train ids are known.
        header: The image's header (rosbags message), or None in folder mode.
    """

    job: FrameJob
    rgb: np.ndarray
    gt_semantic: Optional[np.ndarray]
    gt_panoptic: Optional[np.ndarray]
    header: Any = None


SourceItem = Union[FrameJob, Skip, CopyMessage]


@dataclass
class SourceState:
    """What a source learnt while reading (for metrics.json)."""

    read: int = 0
    unmatched_labels: int = 0
    read_error: Optional[str] = None
    unmatched_label_stamps: List[Tuple[str, int]] = field(default_factory=list)


def resolve_streams(reader: BagReader, image_topics: Sequence[str],
                    label_topics: Sequence[str], use_label_topics: bool) -> List[CameraStream]:
    """Check the requested topics against the bag and pair each image topic with its labels.

    Args:
        image_topics: Camera image topics (Image or CompressedImage).
        label_topics: One label topic per image topic, or empty to use the convention
            ``<namespace>/labels/panoptic`` then ``<namespace>/labels/semantic``.
        use_label_topics: False when labels come from a folder or are not wanted.

    Raises:
        BagError: a topic is missing (listing the bag's topics), has the wrong type, or no
            label topic can be found for an image topic.
    """
    if not image_topics:
        raise BagError(f'no image topic given; image topics in {reader.path}: '
                       + (', '.join(t for t, m in reader.topics.items() if m in IMAGE_TYPES)
                          or 'none'))
    if label_topics and len(label_topics) != len(image_topics):
        raise BagError(f'{len(label_topics)} label topic(s) for {len(image_topics)} image '
                       'topic(s); give one --label-topic per --image-topic, in the same order')
    streams = []
    for index, topic in enumerate(image_topics):
        image_topic = normalize_topic(topic)
        image_type = reader.require(image_topic, IMAGE_TYPES, 'image topic')
        namespace = camera_namespace(image_topic)
        label_topic = None
        if use_label_topics:
            if label_topics:
                label_topic = normalize_topic(label_topics[index])
            else:
                candidates = [f'{namespace}/{leaf}' for leaf in LABEL_TOPIC_CONVENTIONS]
                label_topic = next((c for c in candidates if c in reader.topics), None)
                if label_topic is None:
                    raise BagError(
                        f'no label topic for {image_topic}: none of {", ".join(candidates)} is '
                        f'in {reader.path}; give --label-topic, --labels-dir or --no-labels. '
                        f'Topics: {reader.topic_list()}')
            reader.require(label_topic, (IMAGE_TYPE,), 'label topic')
        info_topic = f'{namespace}/camera_info'
        if reader.topics.get(info_topic) != CAMERA_INFO_TYPE:
            info_topic = None
        streams.append(CameraStream(namespace=namespace, image_topic=image_topic,
                                    image_type=image_type, label_topic=label_topic,
                                    camera_info_topic=info_topic))
    duplicates = sorted({s.namespace for s in streams
                         if [t.namespace for t in streams].count(s.namespace) > 1})
    if duplicates:
        raise BagError(f'several image topics share the camera namespace(s) '
                       f'{", ".join(duplicates)}; their outputs would collide')
    return streams


def _header_stamp(reader: BagReader, message: BagMessage) -> Tuple[Any, int]:
    msg = reader.deserialize(message)
    header = getattr(msg, 'header', None)
    if header is None:
        raise BagError(f'topic {message.topic}: {message.msgtype} has no header to match by')
    return msg, stamp_to_ns(header)


class _BagMatcher:
    """Pairs images with labels of equal header stamp; see ``bag_items``."""

    def __init__(self, reader: BagReader, streams: Sequence[CameraStream], state: SourceState,
                 stop: threading.Event, max_frames: Optional[int],
                 folder_frames: Optional[Dict[str, List[int]]]) -> None:
        self.reader = reader
        self.state = state
        self.stop = stop
        self.max_frames = max_frames
        self.folder_frames = folder_frames
        self.by_image = {s.image_topic: s for s in streams}
        self.by_label = {s.label_topic: s for s in streams if s.label_topic}
        self.by_info = {s.camera_info_topic: s for s in streams if s.camera_info_topic}
        self.waiting_images: Dict[str, 'OrderedDict[int, FrameJob]'] = {
            s.image_topic: OrderedDict() for s in streams}
        self.waiting_labels: Dict[str, 'OrderedDict[int, Tuple[BagMessage, Any]]'] = {
            s.image_topic: OrderedDict() for s in streams}
        self.folder_position = {s.image_topic: 0 for s in streams}

    @property
    def topics(self) -> List[str]:
        return list(self.by_image) + list(self.by_label) + list(self.by_info)

    def pending(self) -> int:
        return sum(len(v) for v in self.waiting_images.values())

    def accepting_images(self) -> bool:
        return self.max_frames is None or self.state.read < self.max_frames

    def on_image(self, message: BagMessage) -> Iterator[SourceItem]:
        topic = message.topic
        stream = self.by_image[topic]
        self.state.read += 1
        try:
            msg, stamp = _header_stamp(self.reader, message)
        except BagError as error:
            yield Skip(topic, -1, 'undecodable message', str(error))
            return
        job = FrameJob(stream, stamp, message.timestamp_ns, f'{topic}@{stamp}',
                       image=message, image_msg=msg)
        if self.folder_frames is not None:
            yield self._folder_job(stream, job)
        elif stream.label_topic is None:
            yield job
        elif stamp in self.waiting_labels[topic]:
            job.label, job.label_msg = self.waiting_labels[topic].pop(stamp)
            yield job
        else:
            queue = self.waiting_images[topic]
            if stamp in queue:
                del queue[stamp]
                yield Skip(topic, stamp, 'duplicate stamp',
                           f'a later image on {topic} has the same stamp {stamp}; only the '
                           'last one is matched with the label')
            queue[stamp] = job
            if len(queue) > MATCH_WINDOW:
                old_stamp, _ = queue.popitem(last=False)
                yield Skip(topic, old_stamp, 'no label',
                           f'no message on {stream.label_topic} with stamp {old_stamp} '
                           f'within {MATCH_WINDOW} images of {topic}')

    def on_label(self, message: BagMessage) -> Iterator[SourceItem]:
        stream = self.by_label[message.topic]
        try:
            msg, stamp = _header_stamp(self.reader, message)
        except BagError:
            self.state.unmatched_labels += 1
            return
        queue = self.waiting_images[stream.image_topic]
        if stamp in queue:
            job = queue.pop(stamp)
            job.label, job.label_msg = message, msg
            yield job
            return
        labels = self.waiting_labels[stream.image_topic]
        if stamp in labels:
            self.state.unmatched_labels += 1
            self.state.unmatched_label_stamps.append((message.topic, stamp))
        labels[stamp] = (message, msg)
        if len(labels) > MATCH_WINDOW:
            old_stamp, _ = labels.popitem(last=False)
            self.state.unmatched_labels += 1
            self.state.unmatched_label_stamps.append((message.topic, old_stamp))

    def _folder_job(self, stream: CameraStream, job: FrameJob) -> SourceItem:
        indices = self.folder_frames.get(stream.city, [])
        position = self.folder_position[stream.image_topic]
        self.folder_position[stream.image_topic] += 1
        if position >= len(indices):
            return Skip(stream.image_topic, job.stamp_ns, 'no label',
                        f'image {position + 1} of {stream.image_topic} has no frame in the '
                        f'labels folder (city {stream.city} has {len(indices)})')
        job.folder_index = indices[position]
        return job

    def finish(self) -> Iterator[SourceItem]:
        """Skips for the images still waiting for a label when reading ended."""
        for topic, queue in self.waiting_images.items():
            stream = self.by_image[topic]
            for stamp in queue:
                if self.stop.is_set():
                    reason, detail = 'interrupted', 'stopped before its label was read'
                elif self.state.read_error:
                    reason = 'bag read error'
                    detail = f'reading stopped before its label: {self.state.read_error}'
                else:
                    reason = 'no label'
                    detail = f'no message on {stream.label_topic} with stamp {stamp}'
                yield Skip(topic, stamp, reason, detail)
            queue.clear()
        for topic, labels in self.waiting_labels.items():
            self.state.unmatched_labels += len(labels)
            self.state.unmatched_label_stamps.extend(
                (self.by_image[topic].label_topic, s) for s in labels)
            labels.clear()


def bag_items(reader: BagReader, streams: Sequence[CameraStream], state: SourceState,
              stop: threading.Event, max_frames: Optional[int] = None,
              folder_frames: Optional[Dict[str, List[int]]] = None) -> Iterator[SourceItem]:
    """Read the bag once and yield jobs, skips and camera_info copies in recording order.

    Every image read becomes exactly one ``FrameJob`` or ``Skip``. A corrupt or truncated
    bag stops reading: ``state.read_error`` says where, and the images read so far are
    still yielded. After ``max_frames`` images, reading goes on only until the pending
    images found their labels.

    Args:
        folder_frames: With ``--labels-dir``: city -> dataset indices of its frames, matched
            to the camera's images in recording order.
    """
    matcher = _BagMatcher(reader, streams, state, stop, max_frames, folder_frames)
    try:
        for message in reader.messages(matcher.topics):
            if stop.is_set():
                break
            topic = message.topic
            if topic in matcher.by_info:
                yield CopyMessage(matcher.by_info[topic], message)
            elif topic in matcher.by_image:
                if matcher.accepting_images():
                    yield from matcher.on_image(message)
                elif not matcher.pending():
                    break
            else:
                yield from matcher.on_label(message)
    except BagError as error:
        state.read_error = str(error)
    yield from matcher.finish()


def folder_items(dataset: Any, state: SourceState, stop: threading.Event,
                 max_frames: Optional[int] = None) -> Iterator[SourceItem]:
    """Jobs for every frame of a ``CityscapesDataset`` (folder mode), city by city."""
    for path, reason in dataset.skipped:
        state.read += 1
        yield Skip(path, -1, 'bad folder frame', reason)
    counters: Dict[str, int] = {}
    for index, frame in enumerate(dataset.frames):
        if stop.is_set() or (max_frames is not None and state.read >= max_frames):
            break
        state.read += 1
        city = os.path.basename(os.path.dirname(frame.image_path))
        number = counters.get(city, 0)
        counters[city] = number + 1
        stream = CameraStream(namespace='/' + city.replace('-', '_'), image_topic=city,
                              image_type='', city=city)
        yield FrameJob(stream, number, number, frame.name, folder_index=index)


def folder_frames_by_city(dataset: Any) -> Dict[str, List[int]]:
    """City folder name -> dataset indices of its frames, in file-name order."""
    cities: Dict[str, List[int]] = {}
    for index, frame in enumerate(dataset.frames):
        cities.setdefault(os.path.basename(os.path.dirname(frame.image_path)), []).append(index)
    return cities


def decode_job(job: FrameJob, label_set: LabelSet, label_divisor: int,
               dataset: Any = None) -> Union[EvalFrame, Skip]:
    """Decode a job's image and ground truth; problems with the data become a ``Skip``."""
    from ..data.cityscapes import DatasetError
    from ..images.raw import ImageDecodeError
    stream = job.stream
    what = f'label of {stream.image_topic} at stamp {job.stamp_ns}'
    try:
        sample = dataset[job.folder_index] if job.folder_index is not None else None
        if job.image_msg is not None:
            rgb = decode_rgb(job.image_msg, stream.image_type)
        else:
            rgb = sample.image
        gt_semantic = gt_panoptic = None
        if sample is not None:
            gt_semantic, gt_panoptic = sample.semantic, sample.panoptic
            what = f'labels of {sample.name} ({sample.label_path})'
        elif job.label_msg is not None:
            gt_semantic, gt_panoptic = decode_label(
                job.label_msg, label_set, label_divisor, f'{stream.label_topic} at stamp '
                f'{job.stamp_ns}')
        if gt_semantic is not None:
            check_same_size(rgb.shape[:2], gt_semantic.shape, what)
    except ImageDecodeError as error:
        return Skip(stream.image_topic, job.stamp_ns, 'image decode', str(error))
    except LabelError as error:
        reason = 'label size' if 'but its image is' in str(error) else 'bad label'
        return Skip(stream.image_topic, job.stamp_ns, reason, str(error))
    except DatasetError as error:
        return Skip(stream.image_topic, job.stamp_ns, 'bad folder frame', str(error))
    header = getattr(job.image_msg, 'header', None)
    return EvalFrame(job=job, rgb=rgb, gt_semantic=gt_semantic, gt_panoptic=gt_panoptic,
                     header=header)
