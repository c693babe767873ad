"""Record synthetic drives as ROS 2 bags (sqlite3 or MCAP) with ground-truth label topics.

Per camera ``cam<k>`` (k = 0..K-1), every frame writes, all with one header (stamp,
``cam<k>_optical_frame``)::

    /cam<k>/image_raw                 sensor_msgs/Image rgb8  (or .../image_raw/compressed)
    /cam<k>/camera_info               sensor_msgs/CameraInfo
    /cam<k>/labels/semantic           sensor_msgs/Image mono8, Cityscapes train ids, 255 void
    /cam<k>/labels/panoptic           sensor_msgs/Image 32SC1, train id * 1000 + instance

Camera k draws frames from ``SceneGenerator(seed=seed + k)``, so the cameras differ and a
(seed, frame, camera) triple is always the same picture. Optionally the same frames are also
written as a Cityscapes-format folder (city ``cam<k>``, split ``val``, frame
``<seed>_<index>``) so that folder and bag evaluations of one drive can be compared.

A recording that fails (a full or read-only disk) removes its partial bag and raises
``BagError``; the Cityscapes folder's runs stay marked incomplete (``data.completion``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
import shutil
import sqlite3
from typing import Any, Callable, Dict, List, Optional

from .bag_io import (
    BagError,
    BagWriter,
    camera_info_message,
    CAMERA_INFO_TYPE,
    compressed_image_message,
    COMPRESSED_IMAGE_TYPE,
    image_message,
    IMAGE_TYPE,
    make_header,
    STORAGE_CHOICES,
)

IMAGE_CHOICES = ('raw', 'jpeg', 'png')
#: Header stamp of frame 0: 2024-01-01T00:00:00Z.
START_STAMP_NS = 1_704_067_200 * 1_000_000_000
CITYSCAPES_SPLIT = 'val'


@dataclass(frozen=True)
class CameraTopics:
    """Topic names of one synthetic camera."""

    name: str
    image: str
    camera_info: str
    semantic: str
    panoptic: str
    frame_id: str


def camera_topics(index: int, image_format: str = 'raw') -> CameraTopics:
    """Topics of camera ``index`` (``/cam<index>/...``)."""
    name = f'cam{index}'
    image = f'/{name}/image_raw' + ('' if image_format == 'raw' else '/compressed')
    return CameraTopics(name=name, image=image, camera_info=f'/{name}/camera_info',
                        semantic=f'/{name}/labels/semantic', panoptic=f'/{name}/labels/panoptic',
                        frame_id=f'{name}_optical_frame')


@dataclass
class SynthBagSummary:
    """What ``write_synthetic_bag`` recorded.

    Attributes:
        path: Bag directory.
        frames: Frames per camera.
        cameras: Per camera, its topics.
        stamps_ns: Header stamps of the frames (same for every camera).
        counts: Topic -> messages written.
    """

    path: str
    frames: int
    cameras: List[CameraTopics]
    stamps_ns: List[int]
    counts: Dict[str, int] = field(default_factory=dict)


def write_synthetic_bag(path: str, frames: int, cameras: int = 1, storage: str = 'mcap',
                        width: int = 1024, height: int = 512, seed: int = 0, fps: float = 10.0,
                        image_format: str = 'raw', distro: Optional[str] = None,
                        cityscapes_dir: Optional[str] = None,
                        progress: Optional[Callable[[int, int], None]] = None
                        ) -> SynthBagSummary:
    """Generate ``frames`` synthetic frames per camera and record them.

    Args:
        path: Bag directory to create (must not exist).
        frames: Frames per camera, >= 1.
        cameras: Number of cameras, 1..16.
        storage: ``mcap`` or ``sqlite3``.
        width, height: Image size in pixels.
        seed: Generator seed of camera 0 (camera k uses seed + k), 0..999999.
        fps: Frame rate setting the stamps (frame i at ``START_STAMP_NS + i / fps``).
        image_format: ``raw`` (rgb8 Image), ``jpeg`` or ``png`` (CompressedImage).
        distro: The ROS 2 distribution that will read the bag (message definitions and
            metadata.yaml version; None: ``bag_io.default_distro()``).
        cityscapes_dir: Also write the frames there in the Cityscapes layout (None: don't).
        progress: Called with (frames done, frames total) after each frame.

    Raises:
        BagError: bad arguments, an existing output path, or a failed write (the partial
            bag is removed; the message names the path and the reason).
    """
    from ..data.synthetic.generator import SceneGenerator
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise BagError(f'frames must be a positive integer, got {frames!r}')
    if isinstance(cameras, bool) or not isinstance(cameras, int) or not 1 <= cameras <= 16:
        raise BagError(f'cameras must be an integer in 1..16, got {cameras!r}')
    if storage not in STORAGE_CHOICES:
        raise BagError(f'storage {storage!r} is not one of {", ".join(STORAGE_CHOICES)}')
    if image_format not in IMAGE_CHOICES:
        raise BagError(f'image format {image_format!r} is not one of {", ".join(IMAGE_CHOICES)}')
    if not fps > 0:
        raise BagError(f'fps must be positive, got {fps!r}')
    if not 0 <= seed <= 999999 - cameras or frames > 999999:
        raise BagError(f'seed must be in 0..{999999 - cameras} and frames at most 999999 (they '
                       'become 6-digit Cityscapes names), got seed {seed}, frames {frames}')
    try:
        generators = [SceneGenerator(width=width, height=height, seed=seed + k)
                      for k in range(cameras)]
    except (TypeError, ValueError) as error:
        raise BagError(f'bad image size {width}x{height}: {error}') from None
    topics = [camera_topics(k, image_format) for k in range(cameras)]
    stamps = [START_STAMP_NS + int(round(i * 1e9 / fps)) for i in range(frames)]
    from ..data.completion import begin_run, finish_run, WriteRun
    runs = [WriteRun(CITYSCAPES_SPLIT, camera.name, seed + k, 0, frames)
            for k, camera in enumerate(topics)] if cityscapes_dir is not None else []
    writer = BagWriter(path, storage=storage, distro=distro)
    try:
        try:
            for run in runs:
                begin_run(cityscapes_dir, run)
            _record(writer, topics, generators, stamps, image_format, (height, width),
                    cityscapes_dir, seed, progress)
        finally:
            writer.close()  # on Ctrl-C too: what was recorded stays a readable bag
    except (OSError, sqlite3.Error) as error:
        shutil.rmtree(path, ignore_errors=True)
        marked = any(os.path.isfile(run.marker(cityscapes_dir)) for run in runs)
        raise BagError(f'{_reason(error)}; the partial bag {path} was removed'
                       + (' and the Cityscapes folder stays marked incomplete' if marked
                          else '')) from None
    try:
        for run in runs:
            finish_run(cityscapes_dir, run)
    except OSError as error:
        raise BagError(f'{_reason(error)}; the bag {path} is complete but the Cityscapes '
                       'folder stays marked incomplete') from None
    return SynthBagSummary(path=path, frames=frames, cameras=topics, stamps_ns=stamps,
                           counts=dict(writer.counts))


def _reason(error: Exception) -> str:
    """``path: No space left on device`` for an OSError, the message for a sqlite3 error."""
    where = getattr(error, 'filename', None)
    reason = getattr(error, 'strerror', None) or str(error)
    return f'{where}: {reason}' if where else reason


def _record(writer: BagWriter, topics: List[CameraTopics], generators: List[Any],
            stamps: List[int], image_format: str, size_hw, cityscapes_dir: Optional[str],
            seed: int, progress: Optional[Callable[[int, int], None]]) -> None:
    """Declare the topics and record every frame of every camera (module docstring)."""
    height, width = size_hw
    typestore = writer.typestore
    for camera in topics:
        writer.add_topic(camera.image,
                         IMAGE_TYPE if image_format == 'raw' else COMPRESSED_IMAGE_TYPE)
        writer.add_topic(camera.camera_info, CAMERA_INFO_TYPE)
        writer.add_topic(camera.semantic, IMAGE_TYPE)
        writer.add_topic(camera.panoptic, IMAGE_TYPE)
    for index, stamp in enumerate(stamps):
        for k, (camera, generator) in enumerate(zip(topics, generators)):
            frame = generator.generate(index)
            header = make_header(typestore, stamp, camera.frame_id)
            if image_format == 'raw':
                image = image_message(typestore, frame.image, 'rgb8', header)
            else:
                image = compressed_image_message(typestore, frame.image, image_format, header)
            writer.write(camera.image, stamp, image)
            writer.write(camera.camera_info, stamp, camera_info_message(
                typestore, header, (height, width), focal=1.1 * width,
                center=(width / 2.0, height / 2.0)))
            writer.write(camera.semantic, stamp,
                         image_message(typestore, frame.semantic, 'mono8', header))
            writer.write(camera.panoptic, stamp,
                         image_message(typestore, frame.panoptic, '32SC1', header))
            if cityscapes_dir is not None:
                from ..data.cityscapes_writer import write_cityscapes_frame
                write_cityscapes_frame(cityscapes_dir, CITYSCAPES_SPLIT, camera.name,
                                       f'{seed + k:06d}_{index:06d}', frame)
        if progress is not None:
            progress(index + 1, len(stamps))
