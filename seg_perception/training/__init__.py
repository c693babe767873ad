"""Training on the package's own architectures and searching post-processing settings.

Modules here may import torch, ``models``, ``export``, ``data``, ``postprocess`` and
``packages``; only ``commands`` imports this sub-package.
"""
