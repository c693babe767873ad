"""Imports every architecture module so their ``@register_model`` decorators run.

``registry._ensure_loaded`` imports this module the first time the registry is queried.
"""

from . import deeplab, enet, fcn, pspnet, pytorch_enet, torchvision_compat, unet  # noqa: F401
