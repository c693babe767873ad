"""ROS 2 bags without ROS: read and write sqlite3 and MCAP bags with the ``rosbags`` library.

``BagReader`` lists a bag's topics, checks the ones a tool needs (naming the ones that are
there when one is missing) and yields raw messages that ``deserialize`` turns into rosbags
message objects. ``BagWriter`` records messages built here (headers, images, camera_info) or
copies raw ones. Every failure of the library (missing file, corrupt or truncated storage,
unknown message type) is re-raised as :class:`BagError` naming the bag and the problem.

Message types are those of one ROS 2 distribution's typestore (``humble`` .. ``kilted``;
default ``$ROS_DISTRO``, else Humble); definitions stored in the bag itself are registered
too, so bags with custom types open. ``sensor_msgs`` Image, CompressedImage and CameraInfo
are the same from Humble to Kilted. A written bag's ``metadata.yaml`` has the version that
distribution's rosbag2 reads (see ``bags.metadata``): Humble's 5 by default.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from .metadata import bag_format, default_distro, DISTRO_CHOICES, MetadataError, rewrite_metadata

STORAGE_CHOICES = ('mcap', 'sqlite3')

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)

_IMAGE_TOPIC_LEAVES = ('image_raw', 'image_rect_color', 'image_rect', 'image_color', 'image')


class BagError(ValueError):
    """A bag is missing, corrupt, truncated, lacks a topic, or holds an unusable message."""


class BagReadError(BagError):
    """Reading stopped part-way through a bag (corrupt or truncated storage)."""


@dataclass(frozen=True)
class BagMessage:
    """One serialized message of a bag.

    Attributes:
        topic: Topic name as recorded (``/cam0/image_raw``).
        msgtype: ROS type name (``sensor_msgs/msg/Image``).
        timestamp_ns: Recording (log) time in nanoseconds.
        raw: CDR bytes.
    """

    topic: str
    msgtype: str
    timestamp_ns: int
    raw: bytes


def make_typestore(distro: Optional[str] = None) -> Any:
    """The rosbags typestore of a distribution (None: ``default_distro()``)."""
    distro = distro or default_distro()
    if distro not in DISTRO_CHOICES:
        raise BagError(f'ROS distribution {distro!r} is not one of {", ".join(DISTRO_CHOICES)}')
    from rosbags.typesys import get_typestore, Stores
    return get_typestore(getattr(Stores, f'ROS2_{distro.upper()}'))


def normalize_topic(topic: str) -> str:
    """``cam0/image_raw`` and ``/cam0/image_raw`` both become ``/cam0/image_raw``."""
    if not isinstance(topic, str) or not topic.strip('/'):
        raise BagError(f'topic name {topic!r} is empty or not a string')
    return '/' + topic.strip('/')


def camera_namespace(image_topic: str) -> str:
    """Camera namespace of an image topic, as the node sees it.

    ``/cam0/image_raw`` -> ``/cam0``; ``/cam0/image_raw/compressed`` -> ``/cam0``;
    ``/front/image_rect_color`` -> ``/front``; a topic with no namespace -> ``''``.
    """
    parts = normalize_topic(image_topic).strip('/').split('/')
    if parts[-1] == 'compressed' and len(parts) > 1:
        parts = parts[:-1]
    if len(parts) > 1:
        parts = parts[:-1]
    elif parts[0] in _IMAGE_TOPIC_LEAVES:
        return ''
    return '/' + '/'.join(parts)


def stamp_to_ns(header: Any) -> int:
    """Nanoseconds of a ``std_msgs/Header``'s stamp (the frame's identity for matching)."""
    stamp = header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class BagReader:
    """An open bag (a rosbag2 directory, or a single ``.mcap`` / ``.db3`` file).

    Args:
        path: Bag directory or storage file.
        distro: Typestore to deserialize with (None: ``default_distro()``).

    Attributes:
        topics: Topic -> message type, sorted by topic.
        counts: Topic -> number of messages.

    Raises:
        BagError: the path does not exist, is not a bag, or its storage cannot be opened.
    """

    def __init__(self, path: str, distro: Optional[str] = None) -> None:
        from rosbags.rosbag2 import Reader
        self.path = str(path)
        self.typestore = make_typestore(distro)
        if not os.path.exists(self.path):
            raise BagError(f'bag {self.path} does not exist')
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as error:  # noqa: BLE001 - rosbags raises many types on bad storage
            hint = ''
            if 'end magic' in str(error):
                hint = ('; an MCAP recording cut short has no footer: `mcap recover IN -o OUT` '
                        '(mcap CLI) rebuilds a readable file')
            raise BagError(f'bag {self.path} cannot be opened (corrupt, truncated or not a '
                           f'rosbag2 bag): {type(error).__name__}: {error}{hint}') from None
        self._connections: Dict[str, Any] = {}
        self.topics: Dict[str, str] = {}
        self.counts: Dict[str, int] = {}
        for connection in self._reader.connections:
            self._connections.setdefault(connection.topic, connection)
            self.topics[connection.topic] = connection.msgtype
            self.counts[connection.topic] = \
                self.counts.get(connection.topic, 0) + int(connection.msgcount)
        self.topics = dict(sorted(self.topics.items()))
        self._register_bag_types()

    def _register_bag_types(self) -> None:
        """Add definitions stored in the bag for types the typestore does not know."""
        from rosbags.typesys import get_types_from_idl, get_types_from_msg
        for connection in self._connections.values():
            if connection.msgtype in self.typestore.types or connection.msgdef is None:
                continue
            text = connection.msgdef.data
            if not text:
                continue
            try:
                if connection.msgdef.format.name == 'IDL':
                    types = get_types_from_idl(text)
                else:
                    types = get_types_from_msg(text, connection.msgtype)
                self.typestore.register(types)
            except Exception:  # noqa: BLE001 - left unknown; reported when deserialized
                continue

    def __enter__(self) -> 'BagReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def topic_list(self) -> str:
        """``topic (type, N msgs)`` for every topic, for error messages."""
        return ', '.join(f'{t} ({m}, {self.counts.get(t, 0)} msgs)'
                         for t, m in self.topics.items()) or 'none'

    def require(self, topic: str, allowed_types: Optional[Sequence[str]] = None,
                what: str = 'topic') -> str:
        """Check that ``topic`` is in the bag (with an allowed type); returns its type.

        Raises:
            BagError: naming the missing topic and listing the bag's topics, or naming the
                wrong type and the allowed ones.
        """
        name = normalize_topic(topic)
        if name not in self.topics:
            raise BagError(f'{what} {name} is not in bag {self.path}; its topics: '
                           f'{self.topic_list()}')
        msgtype = self.topics[name]
        if allowed_types is not None and msgtype not in allowed_types:
            raise BagError(f'{what} {name} in bag {self.path} has type {msgtype}; expected '
                           f'{" or ".join(allowed_types)}')
        return msgtype

    def connection(self, topic: str) -> Any:
        """The rosbags connection of ``topic`` (for copying its definition to a writer)."""
        return self._connections[normalize_topic(topic)]

    def messages(self, topics: Iterable[str]) -> Iterator[BagMessage]:
        """Messages of ``topics`` in recording order.

        Raises:
            BagReadError: the storage is corrupt or truncated part-way (messages before
                that point have been yielded).
        """
        wanted = {normalize_topic(t) for t in topics}
        connections = [c for c in self._reader.connections if c.topic in wanted]
        if not connections:
            return
        count = 0
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, timestamp, raw = next(iterator)
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 - storage errors of any kind
                raise BagReadError(
                    f'bag {self.path}: reading stopped after {count} messages (corrupt or '
                    f'truncated storage): {type(error).__name__}: {error}') from None
            count += 1
            yield BagMessage(connection.topic, connection.msgtype, int(timestamp), raw)

    def deserialize(self, message: BagMessage) -> Any:
        """Decode a message's CDR bytes into a rosbags message object.

        Raises:
            BagError: unknown message type, or bytes that do not decode as that type.
        """
        if message.msgtype not in self.typestore.types:
            raise BagError(f'topic {message.topic}: unknown message type {message.msgtype} '
                           '(not in the typestore and no usable definition in the bag)')
        try:
            return self.typestore.deserialize_cdr(message.raw, message.msgtype)
        except Exception as error:  # noqa: BLE001 - malformed CDR raises several types
            raise BagError(f'topic {message.topic} at {message.timestamp_ns} ns: message '
                           f'does not decode as {message.msgtype}: {type(error).__name__}: '
                           f'{error}') from None


class BagWriter:
    """Records a new bag.

    Args:
        path: Bag directory to create (must not exist).
        storage: ``mcap`` or ``sqlite3``.
        distro: The ROS 2 distribution that will read the bag: its typestore serializes the
            messages and describes their types, and ``metadata.yaml`` gets the version its
            rosbag2 reads (Humble 5, Iron 7, Jazzy and Kilted 9). None: ``default_distro()``.

    Use as a context manager; ``close`` is idempotent and always leaves a readable bag.
    """

    def __init__(self, path: str, storage: str = 'mcap', distro: Optional[str] = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        if storage not in STORAGE_CHOICES:
            raise BagError(f'storage {storage!r} is not one of {", ".join(STORAGE_CHOICES)}')
        self.path = str(path)
        if os.path.exists(self.path):
            raise BagError(f'output bag {self.path} exists already; remove it or choose '
                           'another path')
        self.distro = distro or default_distro()
        try:
            self.format = bag_format(self.distro)
        except MetadataError as error:
            raise BagError(str(error)) from None
        self.typestore = make_typestore(self.distro)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=self.format.storage_version,
                              storage_plugin=plugin)
        try:
            self._writer.open()
        except Exception as error:  # noqa: BLE001
            raise BagError(f'cannot create bag {self.path}: {error}') from None
        self._open = True
        self._connections: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_topic(self, topic: str, msgtype: str, source_connection: Any = None) -> None:
        """Declare ``topic``; a second call for the same topic is a no-op.

        Args:
            topic: Topic name.
            msgtype: ROS type name.
            source_connection: A reader's connection whose offered QoS profiles are copied,
                and its stored definition too for types the typestore lacks; None: no QoS
                profiles (players use their default), the type from the typestore.
        """
        name = normalize_topic(topic)
        if name in self._connections:
            return
        kwargs: Dict[str, Any] = {'typestore': self.typestore}
        qos = list(getattr(getattr(source_connection, 'ext', None), 'offered_qos_profiles',
                           None) or [])
        if msgtype not in self.typestore.types and source_connection is not None \
                and source_connection.msgdef is not None and source_connection.msgdef.data:
            kwargs = {'msgdef': source_connection.msgdef.data,
                      'rihs01': source_connection.digest or 'RIHS01_' + '0' * 64}
        elif msgtype not in self.typestore.types:
            raise BagError(f'cannot record {name}: unknown message type {msgtype}')
        self._connections[name] = self._writer.add_connection(
            name, msgtype, offered_qos_profiles=qos, **kwargs)
        self.counts[name] = 0

    def write(self, topic: str, timestamp_ns: int, message: Any) -> None:
        """Serialize a rosbags message object and record it on a declared topic."""
        name = normalize_topic(topic)
        connection = self._connection(name)
        raw = self.typestore.serialize_cdr(message, connection.msgtype)
        self.write_raw(name, timestamp_ns, raw)

    def write_raw(self, topic: str, timestamp_ns: int, raw: Any) -> None:
        """Record already-serialized CDR bytes on a declared topic."""
        name = normalize_topic(topic)
        self._writer.write(self._connection(name), int(timestamp_ns), raw)
        self.counts[name] += 1

    def _connection(self, name: str) -> Any:
        if not self._open:
            raise BagError(f'bag {self.path} is closed')
        try:
            return self._connections[name]
        except KeyError:
            raise BagError(f'topic {name} was not declared with add_topic') from None

    def close(self) -> None:
        """Finish the storage and write ``metadata.yaml`` in ``self.format``'s version
        (OSError, e.g. a full disk, propagates as the storage's own does)."""
        if self._open:
            self._open = False
            self._writer.close()
            try:
                rewrite_metadata(self.path, self.format)
            except MetadataError as error:
                raise BagError(f'bag {self.path}: {error}') from None


# --------------------------------------------------------------------------- messages


def make_header(typestore: Any, stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` with the given stamp (nanoseconds) and frame id."""
    types = typestore.types
    stamp = types['builtin_interfaces/msg/Time'](sec=int(stamp_ns // 1_000_000_000),
                                                 nanosec=int(stamp_ns % 1_000_000_000))
    return types['std_msgs/msg/Header'](stamp=stamp, frame_id=str(frame_id))


def image_message(typestore: Any, array: np.ndarray, encoding: str, header: Any) -> Any:
    """A rosbags ``sensor_msgs/Image`` of ``array`` (see ``images.raw.encode_image``)."""
    from ..images.raw import encode_image
    return encode_image(array, encoding, header=header,
                        image_msg_type=typestore.types[IMAGE_TYPE])


def compressed_image_message(typestore: Any, rgb: np.ndarray, codec: str, header: Any) -> Any:
    """A rosbags ``sensor_msgs/CompressedImage`` of an RGB uint8 (H, W, 3) image."""
    from ..images.compressed import encode_compressed
    return encode_compressed(rgb, codec, 'rgb8', header=header,
                             compressed_msg_type=typestore.types[COMPRESSED_IMAGE_TYPE])


def camera_info_message(typestore: Any, header: Any, image_hw: Tuple[int, int],
                        focal: float, center: Tuple[float, float]) -> Any:
    """A pinhole ``sensor_msgs/CameraInfo`` without distortion.

    Args:
        image_hw: (height, width) in pixels.
        focal: Focal length in pixels (fx = fy).
        center: Principal point (cx, cy) in pixels.
    """
    types = typestore.types
    cx, cy = float(center[0]), float(center[1])
    k = np.array([focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0], dtype=np.float64)
    p = np.array([focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
                 dtype=np.float64)
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
    return types[CAMERA_INFO_TYPE](
        header=header, height=int(image_hw[0]), width=int(image_hw[1]),
        distortion_model='plumb_bob', d=np.zeros(5, dtype=np.float64), k=k,
        r=np.eye(3, dtype=np.float64).ravel(), p=p, binning_x=0, binning_y=0, roi=roi)


def decode_rgb(message: Any, msgtype: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a rosbags Image or CompressedImage (raises ``ImageDecodeError``)."""
    from ..images.compressed import decode_compressed
    from ..images.raw import to_rgb8
    if msgtype == COMPRESSED_IMAGE_TYPE:
        return decode_compressed(message)
    return to_rgb8(message)
