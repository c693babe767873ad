"""Launch seg_perception_node for N cameras, with a params file, remappings and optional RViz.

Examples::

    ros2 launch seg_perception seg_perception.launch.py cameras:=front,rear
    ros2 launch seg_perception seg_perception.launch.py \\
        params_file:=<share>/config/deeplabv3plus_mobilenetv3_panoptic.yaml cameras:=front \\
        remappings:='front/image_raw:=/cam0/color/image_raw;front/camera_info:=/cam0/info'
    ros2 launch seg_perception seg_perception.launch.py use_rviz:=true large_data:=true
    ros2 launch seg_perception seg_perception.launch.py lifecycle:=true

Arguments left empty keep the params file's value. ``cameras`` is comma-separated.
``remappings`` is a ';'-separated list of ``from:=to`` pairs, so the node fits an existing
camera driver's topic names. ``large_data`` loads config/fastdds_large_data.xml (start the
camera driver with the same profile) so best-effort full-size images arrive.
``lifecycle`` starts ``seg_perception_lifecycle_node`` (same parameters) as a
``launch_ros`` ``LifecycleNode``: it waits unconfigured for a lifecycle manager (or
``ros2 lifecycle set /seg_perception configure`` / ``activate``).
``use_rviz`` starts RViz with a config generated for the launched cameras
(``seg_perception.tools.rviz_config``, written to a temporary file): their overlay, class and
panoptic colour images, Fixed Frame ``rviz_fixed_frame`` (default
``<first camera>_optical_frame``; set it to the cameras' frame_id).

``launch`` and ``launch_ros`` are imported inside ``generate_launch_description`` only, so
the module-level tables below can be checked where they are not installed.
"""

import os

PACKAGE = 'seg_perception'
EXECUTABLE = 'seg_perception_node'
LIFECYCLE_EXECUTABLE = 'seg_perception_lifecycle_node'
NODE_NAME = 'seg_perception'
DEFAULT_PARAMS_FILE = 'enet_panoptic.yaml'
#: The demo's RViz config (its cameras front and rear); launches generate their own.
RVIZ_CONFIG = 'seg_perception.rviz'
FASTDDS_PROFILE = 'fastdds_large_data.xml'

#: Launch argument -> node parameter it overrides when not empty (and how to convert it).
PARAMETER_ARGUMENTS = {
    'model': ('model', 'string'),
    'backend': ('backend', 'string'),
    'precision': ('precision', 'string'),
    'cameras': ('cameras', 'list'),
    'qos_reliability': ('qos_reliability', 'string'),
    'input_transport': ('input_transport', 'string'),
    'output_resolution': ('output_resolution', 'string'),
}

#: Launch arguments: name -> (default, description).
ARGUMENTS = {
    'params_file': ('', f'Parameters YAML; default config/{DEFAULT_PARAMS_FILE}.'),
    'model': ('', 'Zoo model name or model package path (overrides the params file).'),
    'backend': ('', 'auto, tensorrt, onnxruntime or torch (overrides the params file).'),
    'precision': ('', 'auto, fp32, fp16 or int8 (overrides the params file).'),
    'cameras': ('', 'Comma-separated camera namespaces, e.g. front,rear.'),
    'qos_reliability': ('', 'auto, best_effort or reliable (overrides the params file).'),
    'input_transport': ('', 'raw or compressed (overrides the params file).'),
    'output_resolution': ('', 'input or network (overrides the params file).'),
    'namespace': ('', 'Namespace of the node (and so of relative camera topics).'),
    'remappings': ('', "';'-separated from:=to topic remappings."),
    'use_rviz': ('false', "Start RViz showing the launched cameras' outputs."),
    'rviz_fixed_frame': ('', "RViz Fixed Frame: the cameras' frame_id (default "
                             '<first camera>_optical_frame).'),
    'large_data': ('false', f'Use config/{FASTDDS_PROFILE} (best-effort full-size images).'),
    'log_level': ('info', 'Node log level.'),
    'lifecycle': ('false', 'Start the managed (lifecycle) node; a lifecycle manager '
                           'configures and activates it.'),
}


def config_path(share_dir: str, name: str) -> str:
    return os.path.join(share_dir, 'config', name)


def parameter_overrides(values: dict) -> dict:
    """Node parameters from launch argument values; empty arguments are left out."""
    overrides = {}
    for argument, (parameter, kind) in PARAMETER_ARGUMENTS.items():
        text = values.get(argument, '').strip()
        if not text:
            continue
        overrides[parameter] = [c.strip() for c in text.split(',') if c.strip()] \
            if kind == 'list' else text
    return overrides


def parse_remappings(text: str) -> list:
    """``'a:=b;c:=d'`` -> ``[('a', 'b'), ('c', 'd')]``; raises ValueError on a bad pair."""
    pairs = []
    for item in (part.strip() for part in text.split(';')):
        if not item:
            continue
        source, separator, target = item.partition(':=')
        if not separator or not source.strip() or not target.strip():
            raise ValueError(f'remapping {item!r} is not of the form from:=to')
        pairs.append((source.strip(), target.strip()))
    return pairs


def _truthy(text: str) -> bool:
    return text.strip().lower() in ('1', 'true', 'yes', 'on')


def _launch_setup(context, *args, **kwargs):
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import SetEnvironmentVariable
    from launch_ros.actions import LifecycleNode, Node

    share = get_package_share_directory(PACKAGE)
    values = {name: context.launch_configurations.get(name, default)
              for name, (default, _) in ARGUMENTS.items()}
    params_file = values['params_file'] or config_path(share, DEFAULT_PARAMS_FILE)
    actions = []
    if _truthy(values['large_data']):
        profile = config_path(share, FASTDDS_PROFILE)
        actions += [SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile),
                    SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', profile)]
    lifecycle = _truthy(values['lifecycle'])
    actions.append((LifecycleNode if lifecycle else Node)(
        package=PACKAGE, executable=LIFECYCLE_EXECUTABLE if lifecycle else EXECUTABLE,
        name=NODE_NAME,
        namespace=values['namespace'], output='screen', emulate_tty=True,
        parameters=[params_file, parameter_overrides(values)],
        remappings=parse_remappings(values['remappings']),
        arguments=['--ros-args', '--log-level', values['log_level']]))
    if _truthy(values['use_rviz']):
        actions.append(Node(package='rviz2', executable='rviz2', name='seg_perception_rviz',
                            arguments=['-d', rviz_config_file(params_file, values)],
                            output='log'))
    return actions


def rviz_config_file(params_file: str, values: dict) -> str:
    """Write the RViz config of the launched node (cameras, namespace, shown outputs from
    the params file and the launch arguments) to a temporary file, removed at exit."""
    import atexit

    from seg_perception.tools.rviz_config import launch_view, node_parameters, write_rviz_config
    parameters = {**node_parameters(params_file, NODE_NAME, values['namespace']),
                  **parameter_overrides(values)}
    path = write_rviz_config(launch_view(parameters, values['namespace'],
                                         values['rviz_fixed_frame'],
                                         parse_remappings(values['remappings'])))
    atexit.register(_remove_quietly, path)
    return path


def _remove_quietly(path: str) -> None:
    import contextlib
    with contextlib.suppress(OSError):
        os.remove(path)


def generate_launch_description():
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    arguments = [DeclareLaunchArgument(name, default_value=default, description=description)
                 for name, (default, description) in ARGUMENTS.items()]
    return LaunchDescription(arguments + [OpaqueFunction(function=_launch_setup)])
