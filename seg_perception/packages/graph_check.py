"""Checks of a package's ONNX graph that its checksum cannot make: finite weights.

They need the ``onnx`` package: ``packages.loading.load_model_package`` runs them where it is
installed (a robot with only onnxruntime or TensorRT skips them; ``seg-perception export``
and the importers, which always have it, refused such graphs before writing them).
"""

from __future__ import annotations

from typing import List

from ..manifest import ModelManifest


def nonfinite_initializers(model) -> List[str]:
    """Names of the graph's floating-point initializers that hold NaN, or infinity in a
    tensor of more than one value (a lone -inf is a legitimate fill constant, a weight
    tensor holding infinity is what a diverged training run leaves)."""
    import numpy as np
    from onnx import numpy_helper
    bad = []
    for initializer in model.graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype.kind != 'f':
            continue
        if np.isnan(values).any() or (values.size > 1 and np.isinf(values).any()):
            bad.append(initializer.name)
    return bad


def check_graph(model, manifest: ModelManifest, source: str) -> None:
    """Refuse a loaded ONNX ``model`` whose weights are not finite.

    Raises:
        PackageError: One line naming ``source`` and the first offending initializer.
    """
    from .loading import PackageError
    bad = nonfinite_initializers(model)
    if bad:
        raise PackageError(
            f'{source}: the graph weights are not finite: {len(bad)} initializers hold NaN or '
            f'infinity (first {bad[0]}); the training that made them diverged')


def check_graph_file(onnx_path: str, manifest: ModelManifest) -> bool:
    """``check_graph`` on the file ``onnx_path`` when ``onnx`` is installed.

    Returns:
        Whether the checks ran (False without the ``onnx`` package).
    """
    try:
        import onnx
    except ImportError:
        return False
    from .loading import PackageError
    try:
        model = onnx.load(onnx_path)
    except Exception as error:  # noqa: BLE001 - protobuf and onnx raise many types
        raise PackageError(f'{onnx_path}: not a readable ONNX graph: '
                           f'{type(error).__name__}: {error}') from None
    check_graph(model, manifest, onnx_path)
    return True
