"""Shared pytest configuration."""

import os

# Keep torch / onnxruntime from oversubscribing the small CI machine.
os.environ.setdefault('OMP_NUM_THREADS', '2')
