"""Segmentation networks in plain PyTorch (no torchvision), behind one registry."""

from .registry import (  # noqa: F401
                       build_model,
                       get_model_spec,
                       list_models,
                       ModelSpec,
                       register_model,
                       UnknownModelError,
)
