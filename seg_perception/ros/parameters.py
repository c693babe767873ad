"""The node's ROS parameters, declared from the ROS-free ``pipeline.config.PARAMETERS`` table.

Each ``ParameterSpec`` becomes an rcl ``ParameterDescriptor`` (type, description, read-only
flag, valid range); values are checked by ``NodeConfig``, whose messages name the parameter
and its valid values.
"""

from __future__ import annotations

from typing import Any, List

from ..pipeline.config import (
    closest_parameter,
    ConfigError,
    NodeConfig,
    PARAMETERS,
    ParameterSpec,
    validate_value,
)


class NodeStartupError(RuntimeError):
    """The node cannot start: a bad parameter, or a missing / corrupt / unrunnable model."""


def parameter_descriptor(spec: ParameterSpec) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` of one row of the parameter table."""
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )
    types = {'string': ParameterType.PARAMETER_STRING, 'bool': ParameterType.PARAMETER_BOOL,
             'integer': ParameterType.PARAMETER_INTEGER,
             'double': ParameterType.PARAMETER_DOUBLE,
             'string_array': ParameterType.PARAMETER_STRING_ARRAY}
    # dynamic_typing: a value of the wrong type reaches NodeConfig's validation, whose
    # message names the parameter and the valid values (rclpy's says only "expected '3'"),
    # and a string choice of true / false (batch_cameras: auto, true, false) also takes the
    # booleans that YAML and `-p name:=true` give, at start-up and at run time.
    descriptor = ParameterDescriptor(name=spec.name, type=types[spec.type_name],
                                     description=spec.description, read_only=spec.read_only,
                                     additional_constraints=spec.constraint_text,
                                     dynamic_typing=True)
    if spec.type_name == 'double' and spec.minimum is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    elif spec.type_name == 'integer' and spec.minimum is not None:
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def declare_parameters(node: Any) -> NodeConfig:
    """Declare every parameter of the table on ``node`` and return their values.

    Raises:
        NodeStartupError: a value is invalid (in ``NodeConfig``'s words) or rclpy refuses
            to declare it.
    """
    # Check command-line / params-file values first, so that a bad one is reported in
    # NodeConfig's words (rclpy's range error is long and repeats itself).
    overrides = getattr(node, '_parameter_overrides', {}) or {}
    for spec in PARAMETERS:
        if spec.name in overrides:
            try:
                validate_value(spec.name, plain_value(overrides[spec.name].value))
            except ConfigError as error:
                raise NodeStartupError(str(error)) from None
    return read_parameters(node)


def read_parameters(node: Any) -> NodeConfig:
    """The node's parameter values as a ``NodeConfig``; declares those not declared yet.

    The lifecycle node declares in its constructor and reads again on configure (a failed
    declaration is retried then, and so reported as the transition's failure).

    Raises:
        NodeStartupError: as ``declare_parameters``.
    """
    values = {}
    for spec in PARAMETERS:
        if node.has_parameter(spec.name):
            values[spec.name] = plain_value(node.get_parameter(spec.name).value)
            continue
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        try:
            parameter = node.declare_parameter(spec.name, default, parameter_descriptor(spec))
        except Exception as error:  # noqa: BLE001 - rclpy raises several types here
            valid = f'; valid: {spec.constraint_text}' if spec.constraint_text else ''
            raise NodeStartupError(
                f'parameter {spec.name}: {type(error).__name__}: {error} (expected a '
                f'{spec.type_name}{valid})') from None
        values[spec.name] = plain_value(parameter.value)
    try:
        return NodeConfig.from_values(values)
    except ConfigError as error:
        raise NodeStartupError(str(error)) from None


def plain_value(value: Any) -> Any:
    """Parameter values as Python scalars / tuples (arrays come as lists or arrays)."""
    if isinstance(value, (list, tuple)) or hasattr(value, 'tolist'):
        return tuple(value)
    return value


#: Parameters every rclpy node has or that rcl reads itself: never reported as unknown.
ROS_PARAMETERS = ('use_sim_time', 'start_type_description_service')


def unknown_overrides(node: Any) -> List[str]:
    """One warning per parameter override the node does not declare, naming the closest
    valid parameter (``-p camera:=[front]`` -> ``did you mean cameras?``).

    rclpy keeps a node's command-line and params-file values in ``_parameter_overrides``
    (every distribution since Humble, where the public alternative,
    ``automatically_declare_parameters_from_overrides``, would declare the typos too).
    """
    overrides = getattr(node, '_parameter_overrides', {}) or {}
    known = {spec.name for spec in PARAMETERS} | set(ROS_PARAMETERS)
    warnings = []
    for name in sorted(overrides):
        if name in known or name.startswith('qos_overrides.'):
            continue
        closest = closest_parameter(name)
        hint = f'; did you mean {closest}?' if closest else ''
        warnings.append(f'parameter {name!r} is not a parameter of this node and is '
                        f'ignored{hint}')
    return warnings
