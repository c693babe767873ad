"""ros/parameters.py on a real rclpy node (in-process, no DDS traffic): ``batch_cameras``, a
string choice since issue 29 item 3, still takes the booleans that existing launch and
params files give, at start-up and at run time, and a bad value stops start-up with
NodeConfig's message."""

import pytest
from ros_helpers import fresh_domain_id

rclpy = pytest.importorskip('rclpy')
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from seg_perception.pipeline.config import PARAMETERS_BY_NAME  # noqa: E402
from seg_perception.ros.parameters import (  # noqa: E402
    declare_parameters,
    NodeStartupError,
    parameter_descriptor,
)


@pytest.fixture
def make_node():
    from rclpy.context import Context
    from rclpy.node import Node
    context = Context()
    rclpy.init(context=context, domain_id=fresh_domain_id())
    nodes = []

    def make(**overrides):
        node = Node('seg_perception_parameters_test', context=context,
                    parameter_overrides=[Parameter(name, value=value)
                                         for name, value in overrides.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def test_descriptor_is_a_dynamically_typed_string_choice():
    descriptor = parameter_descriptor(PARAMETERS_BY_NAME['batch_cameras'])
    assert descriptor.type == ParameterType.PARAMETER_STRING
    assert descriptor.dynamic_typing and not descriptor.read_only
    assert descriptor.additional_constraints == 'one of auto, true, false'


@pytest.mark.parametrize('override, expected', [
    (None, 'auto'), (True, 'true'), (False, 'false'), ('auto', 'auto'), ('false', 'false'),
])
def test_startup_takes_booleans_and_choices(make_node, override, expected):
    node = make_node(**({} if override is None else {'batch_cameras': override}))
    assert declare_parameters(node).batch_cameras == expected


@pytest.mark.parametrize('override', ['sometimes', 1, 0.5])
def test_bad_startup_value_names_the_parameter_and_the_choices(make_node, override):
    with pytest.raises(NodeStartupError) as raised:
        declare_parameters(make_node(batch_cameras=override))
    assert str(raised.value) == (f'parameter batch_cameras {override!r} is not valid; choose '
                                 'one of auto, true, false')


def test_runtime_sets_of_either_type_are_accepted(make_node):
    """rclpy itself must let a boolean through after a string (and back): the node's own
    callback then validates it (test/ros/test_node.py checks that on the running node)."""
    node = make_node(batch_cameras=True)
    declare_parameters(node)
    for value in ('auto', False, 'true', True):
        result = node.set_parameters([Parameter('batch_cameras', value=value)])[0]
        assert result.successful, (value, result.reason)
        assert node.get_parameter('batch_cameras').value == value
