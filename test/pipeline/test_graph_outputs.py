"""The graph outputs the node loads for the outputs it publishes (``pipeline.graph_outputs``)."""

import pytest

from seg_perception.pipeline.config import ConfigError, NodeConfig, PARAMETERS_BY_NAME
from seg_perception.pipeline.graph_outputs import DEFAULT_GRAPH_OUTPUTS, needed_graph_outputs
from seg_perception.pipeline.outputs import OUTPUT_NAMES


def test_default_switches_need_no_confidence():
    defaults = NodeConfig.from_values({}).enabled_outputs
    assert needed_graph_outputs(defaults) == DEFAULT_GRAPH_OUTPUTS
    assert DEFAULT_GRAPH_OUTPUTS == ('semantic', 'instance', 'panoptic', 'instance_score')


@pytest.mark.parametrize('enabled, expected', [
    ((), ('semantic', 'instance', 'panoptic')),
    (('semantic',), ('semantic', 'instance', 'panoptic')),
    (('confidence',), ('semantic', 'instance', 'panoptic', 'confidence')),
    (('detections',), ('semantic', 'instance', 'panoptic', 'instance_score')),
    (OUTPUT_NAMES, ('semantic', 'instance', 'panoptic', 'confidence', 'instance_score')),
])
def test_each_output_adds_what_it_reads(enabled, expected):
    assert needed_graph_outputs(iter(enabled)) == expected


def test_switches_are_fixed_while_the_node_runs():
    """The set is decided when the Segmenter is loaded: a switch must not change later."""
    assert PARAMETERS_BY_NAME['publish_confidence'].read_only
    with pytest.raises(ConfigError):
        NodeConfig.from_values({}).updated({'publish_confidence': True})
