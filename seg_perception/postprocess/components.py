"""Instances and panoptic ids for semantic-only models (no centre / offset heads).

Instances come from connected components of each thing class (OpenCV, imported when
called); ``panoptic_from_semantic_and_instance`` encodes them as panoptic ids like the
panoptic graphs do. numpy and OpenCV only.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np


def instances_from_connected_components(semantic: np.ndarray, thing_ids: Sequence[int],
                                        min_area: int = 0, connectivity: int = 8,
                                        max_instances: Optional[int] = None) -> np.ndarray:
    """Instances of a semantic-only model: connected components of each thing class.

    Ids run 1..n over thing classes in ascending order, components in OpenCV's raster
    order within a class. Components smaller than ``min_area`` pixels get 0.

    Args:
        semantic: int (H, W) class map.
        thing_ids: Thing class ids.
        min_area: Smallest component kept, in pixels.
        connectivity: 4 or 8.
        max_instances: Keep only this many largest components (ties -> lower id), so ids
            stay below a label divisor; None keeps all.

    Returns:
        int32 (H, W) instance ids, 0 = none.
    """
    import cv2

    semantic = np.asarray(semantic)
    if semantic.ndim != 2:
        raise ValueError(f'semantic must be (H, W), got shape {semantic.shape}')
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    if max_instances is not None and max_instances < 0:
        raise ValueError(f'max_instances must not be negative, got {max_instances}')
    instance = np.zeros(semantic.shape, dtype=np.int32)
    areas: List[np.ndarray] = []
    next_id = 1
    # A class absent from the frame has no component: skipping it keeps the ids and saves
    # a full-frame labelling pass (most of this function's time at 1024x512).
    present = (np.flatnonzero(np.bincount(semantic.ravel(), minlength=256))
               if semantic.dtype == np.uint8 else np.unique(semantic))
    for thing_id in sorted(set(int(t) for t in thing_ids) & set(present.tolist())):
        mask = (semantic == thing_id).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=connectivity, ltype=cv2.CV_32S)
        if count <= 1:
            continue
        component_area = stats[1:, cv2.CC_STAT_AREA]
        kept = component_area >= min_area
        new_ids = np.zeros(count, dtype=np.int32)
        new_ids[1:][kept] = np.arange(next_id, next_id + int(kept.sum()), dtype=np.int32)
        instance = np.where(labels > 0, new_ids[labels], instance)
        areas.append(component_area[kept])
        next_id += int(kept.sum())
    total = next_id - 1
    if max_instances is not None and total > max_instances:
        all_areas = np.concatenate(areas)
        order = np.argsort(-all_areas, kind='stable')[:max_instances]
        renumber = np.zeros(total + 1, dtype=np.int32)
        renumber[np.sort(order) + 1] = np.arange(1, max_instances + 1, dtype=np.int32)
        instance = renumber[instance]
    return instance


def panoptic_from_semantic_and_instance(semantic: np.ndarray, instance: np.ndarray,
                                        label_divisor: int = 1000,
                                        void_id: int = 255) -> np.ndarray:
    """``semantic * label_divisor + instance``, void pixels -> ``void_id * label_divisor``.

    Args:
        semantic: int (H, W) class map (may contain ``void_id``).
        instance: int (H, W) instance ids in 0..label_divisor-1.

    Returns:
        int32 (H, W) panoptic ids.
    """
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.ndim != 2 or semantic.shape != instance.shape:
        raise ValueError(
            f'semantic {semantic.shape} and instance {instance.shape} must be equal (H, W)')
    if instance.size and (instance.min() < 0 or instance.max() >= label_divisor):
        raise ValueError(
            f'instance ids {instance.min()}..{instance.max()} do not fit label_divisor '
            f'{label_divisor} (need 0..{label_divisor - 1})')
    semantic = semantic.astype(np.int32)
    panoptic = semantic * np.int32(label_divisor) + instance.astype(np.int32)
    return np.where(semantic == void_id, np.int32(void_id * label_divisor),
                    panoptic).astype(np.int32)
