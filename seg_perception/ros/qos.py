"""The node's QoS: profiles of its subscriptions and publishers, and following the camera.

With ``qos_reliability`` ``auto`` an image subscription starts reliable; a best-effort camera
then raises an incompatible-QoS event, and the node re-subscribes with the reliability that
``publishers_reliability`` reads off the topic's publishers.

Outputs are reliable, volatile, keep-last ``OUTPUT_DEPTH``. The depth is a repair window,
not a queue: a full-size output travels in many fragments, and a lost fragment is re-sent
only while the sample is still in the writer's history. With depth 1 the next frame evicted
it first and reliable subscribers lost frames; with 10 every frame can still be repaired.
Acknowledged samples leave the history at once (volatile writers), so memory grows only
with samples in flight, and a subscriber that reads slowly still gets the newest frame: its
own reader history (its depth) decides what it keeps, not the node's.
"""

from __future__ import annotations

from typing import Any, Sequence

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def event_callbacks_class() -> Any:
    """rclpy's ``SubscriptionEventCallbacks`` (moved from ``qos_event`` after Humble)."""
    try:
        from rclpy.event_handler import SubscriptionEventCallbacks  # Iron and newer
    except ImportError:
        from rclpy.qos_event import SubscriptionEventCallbacks  # Humble
    return SubscriptionEventCallbacks


def reliability_name(policy: ReliabilityPolicy) -> str:
    """``reliable`` or ``best_effort``, as the ``qos_reliability`` parameter spells them."""
    return 'reliable' if policy == ReliabilityPolicy.RELIABLE else 'best_effort'


def initial_reliability(qos_reliability: str) -> ReliabilityPolicy:
    """Reliability of a new image subscription for the ``qos_reliability`` parameter."""
    if qos_reliability == 'reliable':
        return ReliabilityPolicy.RELIABLE
    if qos_reliability == 'best_effort':
        return ReliabilityPolicy.BEST_EFFORT
    # Until a publisher shows up: reliable; a best-effort camera then raises an
    # incompatible-QoS event and the subscription is re-created best effort.
    return ReliabilityPolicy.RELIABLE


def publishers_reliability(infos: Sequence[Any]) -> ReliabilityPolicy:
    """Reliable when every publisher in ``infos`` (``TopicEndpointInfo``) is, else best effort.
    """
    everyone_reliable = all(
        info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in infos)
    return ReliabilityPolicy.RELIABLE if everyone_reliable else ReliabilityPolicy.BEST_EFFORT


def image_qos(reliability: ReliabilityPolicy) -> QoSProfile:
    """Camera image subscriptions: the latest frame only, volatile."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def camera_info_qos() -> QoSProfile:
    """camera_info subscriptions: the latest message, best effort (fits any publisher)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.BEST_EFFORT)


OUTPUT_DEPTH = 10


def output_qos() -> QoSProfile:
    """Segmentation publishers: reliable, volatile, keep-last ``OUTPUT_DEPTH`` (see above)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=OUTPUT_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
