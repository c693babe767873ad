"""Keep only some outputs of an exported graph, and only the nodes that still feed them.

ONNX Runtime and TensorRT compute every output of a graph whether the caller fetches it or
not. A node that never publishes ``confidence`` (the full-resolution softmax probability of
the chosen class: GatherElements, Sub, Exp, ReduceSum and Div over C x H x W under
``/postprocess/``, ~13 ms of ENet panoptic's ~110 ms at 1024x512 on two CPU cores) pays for
it anyway unless the graph itself loses that output. ``prune_outputs`` keeps the wanted
graph outputs and walks back from them over ``graph.node`` inputs and outputs: every node,
initializer, graph input and ``value_info`` entry that no kept output depends on is dropped
(a panoptic graph asked for ``semantic`` alone loses its ``center_threshold`` input too).
Names read inside the bodies of If / Loop / Scan nodes count as inputs of those nodes.

``onnx`` is imported only inside the functions: it is not a run-time dependency of the
backends (see ``runtime.base.graph_outputs_for``), which run the whole graph and return
only what was asked for when it is missing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import hashlib
import os
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

#: The graph output every caller needs (the Segmenter's maps all start from it).
REQUIRED_OUTPUT = 'semantic'


class PruningError(ValueError):
    """A graph cannot be pruned: unknown output names, an unreadable or changed model, or a
    pruned graph that fails the ONNX checker."""


@dataclass(frozen=True)
class PrunedGraph:
    """What ``prune_outputs`` made.

    Attributes:
        model: The pruned ``onnx.ModelProto`` (a copy; the given model is not changed).
        outputs: Its graph outputs, in the original graph's order.
        inputs: Its graph inputs (those still read by a kept node), in the original order.
        removed_outputs: Graph outputs left out.
        removed_inputs: Graph inputs no kept node reads any more (the caller must not feed
            them: ONNX Runtime rejects unknown feeds).
        removed_nodes: Number of nodes dropped.
        removed_initializers: Number of initializers (dense and sparse) dropped.
    """

    model: Any
    outputs: Tuple[str, ...]
    inputs: Tuple[str, ...]
    removed_outputs: Tuple[str, ...]
    removed_inputs: Tuple[str, ...]
    removed_nodes: int
    removed_initializers: int

    @property
    def summary(self) -> str:
        """One line for logs, e.g. ``without confidence: 5 nodes, 1 initializer fewer``."""
        if not self.removed_outputs:
            return 'all outputs kept'
        text = (f'without {", ".join(self.removed_outputs)}: {self.removed_nodes} nodes, '
                f'{self.removed_initializers} initializers fewer')
        if self.removed_inputs:
            text += f', input {", ".join(self.removed_inputs)} unused'
        return text


def onnx_available() -> bool:
    """Whether the ``onnx`` package (needed to prune a graph) can be imported."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def check_output_names(wanted: Iterable[str], available: Sequence[str]) -> Tuple[str, ...]:
    """Validate a request for graph outputs.

    Args:
        wanted: Output names (any order; repeats are fine).
        available: The graph's outputs, in graph order.

    Returns:
        The wanted names in ``available``'s order, without repeats.

    Raises:
        PruningError: A ``ValueError``: a name is not in ``available`` (the message lists
            the valid ones), or ``semantic`` is missing when the graph has it.
    """
    if isinstance(wanted, str):
        raise PruningError(f'outputs must be a sequence of output names, not the string '
                         f'{wanted!r}')
    wanted = list(wanted)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise PruningError(f'unknown graph output(s) {", ".join(map(repr, unknown))}; valid: '
                         f'{", ".join(available)}')
    if REQUIRED_OUTPUT in available and REQUIRED_OUTPUT not in wanted:
        raise PruningError(f'graph outputs {wanted} lack {REQUIRED_OUTPUT!r}, which every '
                         f'caller needs; valid: {", ".join(available)}')
    return tuple(name for name in available if name in wanted)


def _subgraph_names(graph: Any) -> List[str]:
    """Every tensor name read inside ``graph`` and its own subgraphs (outer-scope reads
    among them; names produced inside the body are harmless extra matches)."""
    names = [name for node in graph.node for name in _node_inputs(node)]
    return names + [value.name for value in graph.output]


def _node_inputs(node: Any) -> List[str]:
    """Tensor names ``node`` reads: its inputs and what its If / Loop / Scan bodies read."""
    names = [name for name in node.input if name]
    for attribute in node.attribute:
        if attribute.HasField('g'):
            names.extend(_subgraph_names(attribute.g))
        for subgraph in attribute.graphs:
            names.extend(_subgraph_names(subgraph))
    return names


def _reachable(graph: Any, outputs: Sequence[str]) -> Tuple[Set[int], Set[str]]:
    """Indices of the nodes the ``outputs`` depend on, and every tensor name they read.

    A depth-first walk from the outputs to their producers, then to the producers of those
    nodes' inputs; names nobody produces are graph inputs or initializers.
    """
    producer: Dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:
                producer[name] = index
    needed: Set[str] = set(outputs)
    kept: Set[int] = set()
    stack = list(outputs)
    while stack:
        index = producer.get(stack.pop())
        if index is None or index in kept:
            continue
        kept.add(index)
        for name in _node_inputs(graph.node[index]):
            if name not in needed:
                needed.add(name)
                stack.append(name)
    return kept, needed


def prune_outputs(model: Any, outputs: Iterable[str], check: bool = True) -> PrunedGraph:
    """A copy of ``model`` with only ``outputs`` and what they depend on.

    Args:
        model: An ``onnx.ModelProto`` (not changed).
        outputs: Graph outputs to keep; must include ``semantic`` when the graph has it.
        check: Validate the result with ``onnx.checker.check_model``.

    Returns:
        A ``PrunedGraph``. Asking for every output returns an equal copy.

    Raises:
        PruningError: Unknown output names (the message lists the graph's outputs), or the
            pruned graph fails the ONNX checker.
    """
    import onnx
    graph = model.graph
    available = [value.name for value in graph.output]
    keep = check_output_names(outputs, available)
    kept_nodes, needed = _reachable(graph, keep)
    produced = {name for index in kept_nodes for name in graph.node[index].output}
    alive = needed | produced
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    target = pruned.graph
    _replace(target.node, [node for index, node in enumerate(graph.node) if index in kept_nodes])
    _replace(target.initializer, [t for t in graph.initializer if t.name in needed])
    _replace(target.sparse_initializer,
             [t for t in graph.sparse_initializer if t.values.name in needed])
    _replace(target.input, [value for value in graph.input if value.name in needed])
    _replace(target.output, [value for value in graph.output if value.name in keep])
    _replace(target.value_info, [value for value in graph.value_info if value.name in alive])
    if check:
        try:
            onnx.checker.check_model(pruned)
        except onnx.checker.ValidationError as error:
            raise PruningError(f'the graph pruned to outputs {", ".join(keep)} fails the ONNX '
                             f'checker: {error}') from None
    initializers = len(graph.initializer) + len(graph.sparse_initializer)
    return PrunedGraph(
        model=pruned, outputs=keep, inputs=tuple(value.name for value in target.input),
        removed_outputs=tuple(name for name in available if name not in keep),
        removed_inputs=tuple(v.name for v in graph.input if v.name not in needed),
        removed_nodes=len(graph.node) - len(kept_nodes),
        removed_initializers=initializers - len(target.initializer)
        - len(target.sparse_initializer))


def prune_onnx_bytes(data: bytes, outputs: Iterable[str],
                     base_dir: Optional[str] = None) -> Tuple[bytes, PrunedGraph]:
    """``prune_outputs`` on a serialized model; returns (pruned model bytes, details).

    Args:
        data: The serialized model (e.g. a package's ``model.onnx`` as read).
        outputs: Graph outputs to keep.
        base_dir: Folder of the model file: weights it stores as external data are read
            from there into the pruned model (whose bytes then hold every weight).

    Raises:
        PruningError: As ``prune_outputs``, or ``data`` is not a serialized ONNX model, or
            its external data cannot be read.
    """
    import onnx
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise PruningError(f'not a valid ONNX model ({type(error).__name__}: {error})') from None
    if base_dir is not None and any(uses_external_data(t) for t in model.graph.initializer):
        try:
            load_external_data_for_model(model, base_dir)
        except (OSError, ValueError) as error:
            raise PruningError(f'cannot read its external data in {base_dir}: {error}') from None
    result = prune_outputs(model, outputs)
    return result.model.SerializeToString(), result


@contextlib.contextmanager
def pruned_onnx_file(onnx_path: str, outputs: Iterable[str],
                     sha256: Optional[str] = None) -> Iterator[Tuple[str, PrunedGraph]]:
    """The model at ``onnx_path`` pruned to ``outputs``, as a temporary file for tools that
    read a path (TensorRT's parser, ONNX Runtime's profiler); removed on leaving.

    Args:
        onnx_path: The ONNX file (its external data, if any, is read from its folder).
        outputs: Graph outputs to keep.
        sha256: Expected checksum of the bytes read (a file replaced meanwhile is refused).

    Yields:
        (path of ``<stem>.pruned.onnx`` in a new temporary folder, ``PrunedGraph``).

    Raises:
        PruningError: As ``prune_onnx_bytes``, or the checksum differs.
    """
    with open(onnx_path, 'rb') as stream:
        data = stream.read()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise PruningError(f'{onnx_path} changed while loading (its checksum differs); try '
                           'again')
    try:
        model, pruned = prune_onnx_bytes(data, outputs, os.path.dirname(onnx_path))
    except PruningError as error:
        raise PruningError(f'{onnx_path}: {error}') from None
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    with tempfile.TemporaryDirectory(prefix='seg_perception_pruned_') as scratch:
        path = os.path.join(scratch, f'{stem}.pruned.onnx')
        with open(path, 'wb') as stream:
            stream.write(model)
        yield path, pruned


def _replace(field: Any, items: List[Any]) -> None:
    """Set a repeated protobuf field to ``items`` (messages of another graph: ``extend``
    copies them)."""
    del field[:]
    field.extend(items)
