"""Inference backends behind one interface: ONNX Runtime, PyTorch and TensorRT."""

from .base import (  # noqa: F401
                   Backend,
                   BACKEND_CHOICES,
                   BackendError,
                   BackendInfo,
                   BackendUnavailable,
                   DEVICE_CHOICES,
                   PRECISION_CHOICES,
)
