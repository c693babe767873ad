"""Which layers of a TensorRT network a reduced-precision build keeps in FP32.

Layers are chosen by name: an ``fnmatch`` pattern, or a substring for a pattern without
``*?[`` (TensorRT names a layer after its ONNX node, e.g. ``/postprocess/MatMul``). Of those,
the ones pinned follow the rule Polygraphy's ``debug precision`` applies before it marks a
layer (``mark_layers`` in ``polygraphy/tools/debug/subtool/precision.py``): constants are
left alone, and so is every layer with an output that is not an execution tensor (shape
computations) or not floating point (the TopK behind ArgMax / ArgMin, casts to integers,
comparisons). Polygraphy also admits INT8 outputs; these graphs have none before TensorRT
quantizes them, and pinning a quantize layer to FP32 would be wrong, so they are left too.

The ONNX parser adds layers of its own, named ``ONNXTRT_*`` (``ONNXTRT_Broadcast_12``,
``ONNXTRT_castHelper_3``) or ``(Unnamed Layer* N)``, which no node-name pattern matches. Such a
helper belongs to the nodes around it: it takes the patterns of every layer it reads from or
feeds, through chains of helpers, so the broadcasts inside ``/postprocess/`` stay FP32 too.

Nothing here imports TensorRT; ``trt`` is passed in (the real module or a test stand-in).
"""

from __future__ import annotations

from dataclasses import dataclass
import fnmatch
from typing import Any, Dict, List, Set, Tuple

from .base import BackendError

PARSER_HELPER_PREFIXES = ('ONNXTRT_', '(Unnamed Layer')


@dataclass(frozen=True)
class Pinning:
    """What ``keep_layers_in_fp32`` did.

    Attributes:
        pinned: Names of the layers constrained to FP32, in network order.
        helpers: Those of them that are parser helpers (pinned for their neighbours).
        left: Layers matched by name but left alone (constants, shape or integer outputs).
    """

    pinned: Tuple[str, ...]
    helpers: Tuple[str, ...]
    left: Tuple[str, ...]

    def summary(self) -> str:
        """One log line: how many, and every pinned layer's name."""
        return (f'keeping {len(self.pinned)} layer(s) in FP32 ({len(self.helpers)} of them '
                f'parser helpers; {len(self.left)} matching layer(s) left as they are: '
                f'constants, shape or integer outputs): {", ".join(self.pinned)}')


def layer_matches(name: str, pattern: str) -> bool:
    """Whether a layer name matches an ``--fp32-layers`` pattern (fnmatch, else substring)."""
    if any(c in pattern for c in '*?['):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def is_parser_helper(name: str) -> bool:
    """A layer the ONNX parser added by itself (no ONNX node of that name)."""
    return name.startswith(PARSER_HELPER_PREFIXES)


def can_pin(trt: Any, layer: Any) -> bool:
    """Polygraphy's rule: not a constant, every output an execution tensor of a float type."""
    if layer.type == trt.LayerType.CONSTANT or layer.num_outputs == 0:
        return False
    for index in range(layer.num_outputs):
        output = layer.get_output(index)
        if output is None or not getattr(output, 'is_execution_tensor', True) \
                or output.dtype not in (trt.float32, trt.float16):
            return False
    return True


def keep_layers_in_fp32(trt: Any, network: Any, patterns: Tuple[str, ...],
                        optional: Tuple[str, ...] = ()) -> Pinning:
    """Constrain the layers matching ``patterns`` (and their parser helpers) to FP32.

    Sets ``layer.precision`` and every output's type to ``trt.float32``; the builder needs
    ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` for them to hold.

    Raises:
        BackendError: A pattern not in ``optional`` matches no layer that can be pinned
            (lists some layer names).
    """
    layers = [network.get_layer(index) for index in range(network.num_layers)]
    chosen = [set() if is_parser_helper(layer.name) else
              {p for p in patterns if layer_matches(layer.name, p)} for layer in layers]
    _attribute_helpers(layers, chosen)
    pinned: List[str] = []
    helpers: List[str] = []
    left: List[str] = []
    hits = {pattern: 0 for pattern in patterns}
    for layer, found in zip(layers, chosen):
        if not found:
            continue
        if not can_pin(trt, layer):
            left.append(layer.name)
            continue
        layer.precision = trt.float32
        for index in range(layer.num_outputs):
            layer.set_output_type(index, trt.float32)
        pinned.append(layer.name)
        if is_parser_helper(layer.name):
            helpers.append(layer.name)
        else:
            for pattern in found:
                hits[pattern] += 1
    missing = [p for p, count in hits.items() if count == 0 and p not in optional]
    if missing:
        names = [layer.name for layer in layers
                 if not is_parser_helper(layer.name) and can_pin(trt, layer)]
        shown = ', '.join(names[:12]) + (' ...' if len(names) > 12 else '')
        raise BackendError(f'--fp32-layers pattern(s) {", ".join(missing)} match no layer '
                           'that can be kept in FP32 (floating-point outputs, not a constant '
                           f'or shape computation); such layers are named like: {shown}')
    return Pinning(tuple(pinned), tuple(helpers), tuple(left))


def _attribute_helpers(layers: List[Any], chosen: List[Set[str]]) -> None:
    """Give each parser helper the patterns of the layers it reads from or feeds."""
    producer: Dict[str, int] = {}
    consumers: Dict[str, List[int]] = {}
    for index, layer in enumerate(layers):
        for slot in range(layer.num_outputs):
            output = layer.get_output(slot)
            if output is not None:
                producer[output.name] = index
        for slot in range(layer.num_inputs):
            tensor = layer.get_input(slot)
            if tensor is not None:
                consumers.setdefault(tensor.name, []).append(index)
    neighbours: Dict[int, Set[int]] = {}
    for index, layer in enumerate(layers):
        if not is_parser_helper(layer.name):
            continue
        near = {producer[t.name] for t in _inputs(layer) if t.name in producer}
        for slot in range(layer.num_outputs):
            output = layer.get_output(slot)
            if output is not None:
                near.update(consumers.get(output.name, ()))
        neighbours[index] = near
    changed = True
    while changed:                 # chains of helpers: repeat until nothing new spreads
        changed = False
        for index, near in neighbours.items():
            spread = set().union(*(chosen[n] for n in near)) - chosen[index]
            if spread:
                chosen[index] |= spread
                changed = True


def _inputs(layer: Any) -> List[Any]:
    return [t for t in (layer.get_input(i) for i in range(layer.num_inputs)) if t is not None]
