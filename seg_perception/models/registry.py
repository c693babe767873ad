"""Model registry, torchvision style: one name, one builder.

Every builder returns a ``torch.nn.Module`` with this contract::

    forward(x: float32 (N, 3, H, W), normalised with the manifest's mean/std)
      -> dict
         'semantic': (N, num_classes, H, W) logits at input resolution
         'center':   (N, 1, H/r, W/r) instance centre heatmap (regressed, no sigmoid)
                     -- only when built with panoptic=True
         'offset':   (N, 2, H/r, W/r) (dy, dx) in input pixels from each location to
                     its instance centre -- only when built with panoptic=True

r is the module's ``instance_stride`` (a power of two): the instance outputs stay at the
resolution of the features they are computed from; the fused post-processing samples them
on its grouping grid and training upsamples them for the losses. H and W must be multiples
of the builder's ``size_divisor``. The module attributes ``num_classes``, ``panoptic``,
``size_divisor`` and ``instance_stride`` describe it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List


class UnknownModelError(KeyError):
    """The model name is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ''


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture.

    Attributes:
        name: Registry name (``enet``, ``deeplabv3plus_mobilenetv3``...).
        builder: ``builder(num_classes: int, panoptic: bool, **kwargs) -> nn.Module``.
        description: One line shown by ``seg-perception models``.
        size_divisor: Input height and width must be multiples of this.
    """

    name: str
    builder: Callable[..., object]
    description: str
    size_divisor: int = 32


_REGISTRY: Dict[str, ModelSpec] = {}


def register_model(name: str, description: str, size_divisor: int = 32):
    """Decorator registering ``builder`` under ``name``."""

    def decorate(builder: Callable[..., object]) -> Callable[..., object]:
        if name in _REGISTRY:
            raise ValueError(f'model {name!r} is registered twice')
        _REGISTRY[name] = ModelSpec(name, builder, description, size_divisor)
        return builder

    return decorate


def _ensure_loaded() -> None:
    # Importing the architecture modules runs their @register_model decorators.
    from . import architectures  # noqa: F401


def list_models() -> List[str]:
    """Sorted names of every registered architecture."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f'unknown model {name!r}; valid names: {", ".join(sorted(_REGISTRY))}') from None


def build_model(name: str, num_classes: int = 19, panoptic: bool = False, **kwargs):
    """Build the registered architecture ``name`` (random initialisation)."""
    spec = get_model_spec(name)
    return spec.builder(num_classes=num_classes, panoptic=panoptic, **kwargs)
