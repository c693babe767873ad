"""Publish a bag's topics over ROS 2 at the recorded timing (``ros2 bag play`` without rosbag2).

Messages are read with ``rosbags`` and published as their recorded CDR bytes (no
deserialization), so any type whose Python package is installed can be replayed. Images,
compressed images and camera_info go out reliable, keep-last depth 1, like a camera driver;
other topics reliable, keep-last 10. Header stamps stay as recorded; the gaps between
messages follow their recording times divided by ``rate``.

rclpy is imported inside the functions, so ``--help`` works without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import importlib
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence

from ..bags.bag_io import (
    BagError,
    BagReader,
    CAMERA_INFO_TYPE,
    IMAGE_TYPES,
    normalize_topic,
)

#: Types published with depth 1 (a stale frame is dropped, never queued).
SENSOR_TYPES = IMAGE_TYPES + (CAMERA_INFO_TYPE,)
NODE_NAME = 'seg_perception_replay'


@dataclass
class ReplayStats:
    """What a replay published.

    Attributes:
        published: Topic -> messages published.
        loops: Completed passes over the bag.
        wall_s: Seconds from the first to the last publish.
    """

    published: Dict[str, int] = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``; BagError when its package is missing."""
    parts = msgtype.split('/')
    if len(parts) != 3:
        raise BagError(f'message type {msgtype!r} is not of the form package/msg/Name')
    package, kind, name = parts
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError):
        raise BagError(f'cannot replay {msgtype}: its Python message package {package} is not '
                       'installed (source the workspace that provides it)') from None


def _qos(msgtype: str) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    depth = 1 if msgtype in SENSOR_TYPES else 10
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def replay_bag(path: str, rate: float = 1.0, loop: bool = False,
               topics: Optional[Sequence[str]] = None, delay_s: float = 0.0,
               distro: Optional[str] = None, context: Any = None,
               stop: Optional[threading.Event] = None,
               on_published: Optional[Callable[[str, int], None]] = None) -> ReplayStats:
    """Publish ``path``'s messages at their recorded pace until the end (or ``stop``).

    Args:
        path: Bag directory or storage file.
        rate: Playback speed factor (> 0); 2 plays twice as fast.
        loop: Start over at the end until stopped.
        topics: Topics to publish (default all); a missing one raises ``BagError`` listing
            the bag's topics.
        delay_s: Wait this long after creating the publishers (lets subscribers match).
        distro: Typestore used to open the bag (None: ``bag_io.default_distro()``).
        context: An initialised rclpy Context (None: the default context, which must be
            initialised by the caller).
        stop: Set it to stop after the current message.
        on_published: Called with (topic, recorded time ns) after each publish.

    Raises:
        BagError: bad bag, missing topic, unknown or uninstalled message type, bad rate.
    """
    if not rate > 0:
        raise BagError(f'rate must be positive, got {rate!r}')
    stop = stop if stop is not None else threading.Event()
    with BagReader(path, distro=distro) as reader:
        selected = [normalize_topic(t) for t in topics] if topics else list(reader.topics)
        for topic in selected:
            reader.require(topic)
        classes = {t: message_class(reader.topics[t]) for t in selected}
        from rclpy.node import Node
        node = Node(NODE_NAME, context=context)
        try:
            publishers = {t: node.create_publisher(classes[t], t, _qos(reader.topics[t]))
                          for t in selected}
            stats = ReplayStats(published={t: 0 for t in selected})
            if delay_s > 0 and stop.wait(delay_s):
                return stats
            first_publish = None
            while not stop.is_set():
                origin = None
                started = time.monotonic()
                for message in reader.messages(selected):
                    if origin is None:
                        origin = message.timestamp_ns
                    due = started + (message.timestamp_ns - origin) / 1e9 / rate
                    if stop.wait(max(due - time.monotonic(), 0.0)):
                        break
                    publishers[message.topic].publish(bytes(message.raw))
                    first_publish = first_publish or time.monotonic()
                    stats.published[message.topic] += 1
                    if on_published is not None:
                        on_published(message.topic, message.timestamp_ns)
                else:
                    stats.loops += 1
                    if not loop:
                        break
                    continue
                break
            if first_publish is not None:
                stats.wall_s = time.monotonic() - first_publish
            return stats
        finally:
            node.destroy_node()


def replay_until_stopped(path: str, stop: threading.Event, **replay_options: Any) -> ReplayStats:
    """``replay_bag`` in rclpy's default context, initialised here without rclpy's own signal
    handlers (the caller owns SIGINT / SIGTERM and sets ``stop``) and shut down afterwards.

    Raises:
        ImportError: rclpy is not available.
        BagError: as ``replay_bag``.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        return replay_bag(path, stop=stop, **replay_options)
    finally:
        rclpy.try_shutdown()
