"""Newest-frame mailbox: one slot per camera, a frame replaced before it was taken is dropped.

Subscription callbacks ``put`` frames (still undecoded: the worker decodes the ones it
takes); the single inference worker ``wait_for_any`` and ``take``s them. Nothing ever queues:
a camera faster than inference loses its stale frames (counted, never decoded), so the output
always shows the newest picture.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Any, Dict, Generic, List, Optional, Sequence, TypeVar

Item = TypeVar('Item')


@dataclass(frozen=True)
class SlotCounts:
    """Frames put into and dropped from one camera's slot since start."""

    received: int
    dropped: int


class LatestFrameStore(Generic[Item]):
    """Thread-safe newest-item slot per key (camera) with drop counting.

    Args:
        keys: The cameras; ``put`` / ``take`` with any other key raise ``KeyError``.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError('LatestFrameStore needs at least one camera')
        self._keys = tuple(keys)
        self._slots: Dict[str, Optional[Item]] = {key: None for key in self._keys}
        self._received = {key: 0 for key in self._keys}
        self._dropped = {key: 0 for key in self._keys}
        self._closed = False
        self._condition = threading.Condition()

    @property
    def keys(self) -> tuple:
        return self._keys

    def put(self, key: str, item: Item) -> bool:
        """Store ``item`` as ``key``'s newest frame; returns True if it replaced (dropped) one."""
        with self._condition:
            self._check(key)
            replaced = self._slots[key] is not None
            self._slots[key] = item
            self._received[key] += 1
            if replaced:
                self._dropped[key] += 1
            self._condition.notify_all()
        return replaced

    def take(self, key: str) -> Optional[Item]:
        """Remove and return ``key``'s newest frame, or None when there is none."""
        with self._condition:
            self._check(key)
            item, self._slots[key] = self._slots[key], None
        return item

    def take_all(self) -> Dict[str, Item]:
        """Remove and return the newest frame of every camera that has one (camera order)."""
        with self._condition:
            taken = {key: item for key, item in self._slots.items() if item is not None}
            for key in taken:
                self._slots[key] = None
        return taken

    def pending(self) -> List[str]:
        """Cameras that have an untaken frame, in camera order."""
        with self._condition:
            return [key for key, item in self._slots.items() if item is not None]

    def wait_for_any(self, timeout: Optional[float] = None) -> bool:
        """Block until some camera has a frame or the store is closed.

        Returns:
            True when a frame is waiting, False on timeout or after ``close``.
        """
        with self._condition:
            self._condition.wait_for(
                lambda: self._closed or any(v is not None for v in self._slots.values()),
                timeout)
            return not self._closed and any(v is not None for v in self._slots.values())

    def close(self) -> None:
        """Wake every waiter for good (shutdown); later waits return False at once."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def counts(self, key: str) -> SlotCounts:
        with self._condition:
            self._check(key)
            return SlotCounts(self._received[key], self._dropped[key])

    def _check(self, key: Any) -> None:
        if key not in self._slots:
            raise KeyError(f'unknown camera {key!r}; cameras: {", ".join(self._keys)}')
