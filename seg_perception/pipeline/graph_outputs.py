"""Which graph outputs the node needs for the outputs it publishes (ROS-free).

ONNX Runtime and TensorRT compute every output of a graph, fetched or not, so the node
loads its Segmenter with only the graph outputs its enabled outputs read (the others are
pruned from the graph, see ``packages.output_pruning``):

* ``semantic``, ``instance``, ``panoptic``: always (every map and picture comes from them;
  the Segmenter of a panoptic model needs all three);
* ``confidence``: only for the ``confidence`` output (its full-resolution softmax is ~12 %
  of ENet panoptic's kernel time at 1024x512 on CPU);
* ``instance_score``: only for ``detections`` (their scores). A semantic model scores its
  instances by their mean confidence instead, so there it keeps ``confidence``
  (``segmenter.segmenter_outputs``).

The ``publish_<output>`` switches are read-only parameters (a change needs a restart), so
the set is decided once, when the Segmenter is loaded.
"""

from __future__ import annotations

from typing import Iterable, Tuple

from .outputs import OUTPUTS

#: Graph outputs every frame needs, whatever is published.
ALWAYS = ('semantic', 'instance', 'panoptic')

#: Published output -> the graph output it reads beyond ``ALWAYS``.
EXTRA_GRAPH_OUTPUT = {'confidence': 'confidence', 'detections': 'instance_score'}


def needed_graph_outputs(enabled_outputs: Iterable[str]) -> Tuple[str, ...]:
    """Graph outputs to load the Segmenter with (its ``outputs=``) for these outputs.

    Args:
        enabled_outputs: Names of the outputs table (``pipeline.outputs.OUTPUTS``) that are
            switched on, e.g. ``NodeConfig.enabled_outputs``.

    Returns:
        Names of the graph contract: ``ALWAYS``, then ``confidence`` and ``instance_score``
        where an enabled output reads them (the Segmenter puts them in graph order).
    """
    enabled = set(enabled_outputs)
    return ALWAYS + tuple(graph for output, graph in EXTRA_GRAPH_OUTPUT.items()
                          if output in enabled)


#: What the node loads with default parameters (every default switch, detections on).
DEFAULT_GRAPH_OUTPUTS: Tuple[str, ...] = needed_graph_outputs(
    spec.name for spec in OUTPUTS if spec.default)
