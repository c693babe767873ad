"""The evaluator's output bag: inputs plus every topic the node publishes, for RViz / Foxglove.

Per camera namespace ``<cam>`` it records, at the input image's recording time and with the
input image's header (stamp and frame_id):

    <input image topic>, <cam>/camera_info, <label topic>      copied unchanged
    <cam>/segmentation/<output>     each chosen image output, as the node publishes it
    <cam>/segmentation/camera_info  the camera's latest camera_info with the image header

The topics are the rows of the node's outputs table (``pipeline.outputs.OUTPUTS``) that
need no extra ROS package, and the arrays come from the same ``render_outputs``, so the bag
holds exactly what the live node would publish for the same result.

A write that fails (a full or read-only disk) removes the partial bag, which a reader could
not open without its footer, and records why in ``failed``; the evaluation goes on without
it (removing it frees the room metrics.json and the report need).
"""

from __future__ import annotations

from dataclasses import replace
import shutil
import sqlite3
from typing import Any, Dict, Optional, Sequence

from ..bags.bag_io import (
    BagMessage,
    BagReader,
    BagWriter,
    CAMERA_INFO_TYPE,
    image_message,
)
from ..pipeline.outputs import output_topic, OUTPUTS_BY_NAME, PLAIN_OUTPUT_NAMES
from .sources import CameraStream, EvalFrame

#: The outputs a bag can hold: every output of the node that needs no extra ROS package.
OUTPUT_CHOICES = PLAIN_OUTPUT_NAMES


def segmentation_topic(stream: CameraStream, output: str) -> str:
    return output_topic(stream.namespace, output)


class OutputBag:
    """An MCAP bag receiving copies of the inputs and the segmentation outputs.

    Args:
        path: Bag directory to create.
        reader: The input bag (for copying its message definitions and camera_info).
        streams: The evaluated cameras.
        outputs: Which segmentation outputs to record (names of ``OUTPUT_CHOICES``).
        storage: ``mcap`` (default) or ``sqlite3``.
        distro: The ROS 2 distribution whose rosbag2 will read the bag: its message
            definitions and metadata.yaml version (None: ``bag_io.default_distro()``).
    """

    def __init__(self, path: str, reader: BagReader, streams: Sequence[CameraStream],
                 outputs: Sequence[str] = OUTPUT_CHOICES, storage: str = 'mcap',
                 distro: Optional[str] = None) -> None:
        self.path = path
        self.outputs = tuple(outputs)
        self._reader = reader
        self._writer = BagWriter(path, storage=storage, distro=distro)
        self._camera_info: Dict[str, Any] = {}
        self.frames = 0
        #: Why recording stopped (the partial bag was then removed), or None.
        self.failed: Optional[str] = None
        for stream in streams:
            for topic in (stream.image_topic, stream.label_topic, stream.camera_info_topic):
                if topic:
                    self._writer.add_topic(topic, reader.topics[topic],
                                           source_connection=reader.connection(topic))
            for output in self.outputs:
                if output == 'camera_info' and stream.camera_info_topic is None:
                    continue
                self._writer.add_topic(segmentation_topic(stream, output),
                                       OUTPUTS_BY_NAME[output].message_type)

    @property
    def counts(self) -> Dict[str, int]:
        return dict(self._writer.counts)

    def copy(self, stream: CameraStream, message: BagMessage) -> None:
        """Record an input message unchanged; camera_info is also kept for the outputs."""
        if message.msgtype == CAMERA_INFO_TYPE:
            self._camera_info[stream.namespace] = message
        if self.failed is None:
            try:
                self._writer.write_raw(message.topic, message.timestamp_ns, message.raw)
            except (OSError, sqlite3.Error) as error:
                self._fail(error)

    def write_frame(self, frame: EvalFrame, outputs: Any) -> None:
        """Record a frame's input image (and label) and its rendered outputs; after a failed
        write (``failed``) nothing more is recorded.

        Args:
            frame: The decoded frame (its job holds the raw input messages and header).
            outputs: ``pipeline.outputs.FrameOutputs`` of the frame.
        """
        if self.failed is None:
            try:
                self._write_frame(frame, outputs)
            except (OSError, sqlite3.Error) as error:
                self._fail(error)

    def _write_frame(self, frame: EvalFrame, outputs: Any) -> None:
        job = frame.job
        stream = job.stream
        timestamp = job.log_ns
        self._writer.write_raw(job.image.topic, timestamp, job.image.raw)
        if job.label is not None:
            self._writer.write_raw(job.label.topic, job.label.timestamp_ns, job.label.raw)
        typestore = self._writer.typestore
        for output, array in outputs.images.items():
            if output not in self.outputs:
                continue
            encoding = OUTPUTS_BY_NAME[output].encoding_of(array)
            self._writer.write(segmentation_topic(stream, output), timestamp,
                               image_message(typestore, array, encoding, frame.header))
        info = self._camera_info_for(stream, frame.header)
        if info is not None and 'camera_info' in self.outputs:
            self._writer.write(segmentation_topic(stream, 'camera_info'), timestamp, info)
        self.frames += 1

    def _camera_info_for(self, stream: CameraStream, header: Any) -> Optional[Any]:
        message = self._camera_info.get(stream.namespace)
        if message is None:
            return None
        # The outputs are at input resolution, so only the header changes.
        return replace(self._reader.deserialize(message), header=header)

    def close(self) -> None:
        """Finish the bag (its footer and metadata.yaml); a failure removes it (``failed``)."""
        if self.failed is None:
            try:
                self._writer.close()
            except (OSError, sqlite3.Error) as error:
                self._fail(error)

    def _fail(self, error: Exception) -> None:
        """Stop recording and remove the partial bag; ``failed`` says why, in one line."""
        where = getattr(error, 'filename', None)
        reason = getattr(error, 'strerror', None) or str(error)
        self.failed = (f'{where + ": " if where else ""}{reason}; recording stopped after '
                       f'{self.frames} frames and the partial output bag {self.path} was removed')
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - the bag is being discarded anyway
            pass
        shutil.rmtree(self.path, ignore_errors=True)
