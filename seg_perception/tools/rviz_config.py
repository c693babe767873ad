"""The RViz configuration of a launch: the launched cameras' outputs, in the camera's frame.

``launch/seg_perception.launch.py`` with ``use_rviz:=true`` writes one into a temporary
file: one Image display per camera and shown output (overlay, class colours, panoptic
colours, where the node publishes them), topics resolved as the node resolves them (under
its namespace unless a camera name is absolute, then the launch's remappings), and Fixed
Frame the cameras' frame_id (default ``<first camera>_optical_frame``). No ROS install is
needed to generate or test one. config/seg_perception.rviz is the demo's::

    python -m seg_perception.tools.rviz_config --cameras front,rear --fixed-frame front_optical
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import os
import sys
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from ..pipeline.outputs import output_topic

#: Image outputs RViz shows, with their display names, in display order.
SHOWN_OUTPUTS: Tuple[Tuple[str, str], ...] = (
    ('overlay', 'Overlay'), ('semantic_color', 'Semantic'), ('panoptic_color', 'Panoptic'))
#: The node's defaults where a params file leaves them out.
DEFAULT_CAMERAS = ('camera',)
OPTICAL_FRAME_SUFFIX = '_optical_frame'


@dataclass(frozen=True)
class RvizView:
    """What one RViz window shows.

    Attributes:
        cameras: Camera namespaces as the node's ``cameras`` parameter names them.
        namespace: The node's namespace ('' = root).
        fixed_frame: RViz's Fixed Frame ('' = ``<first camera>_optical_frame``).
        outputs: Names of ``SHOWN_OUTPUTS`` the node publishes.
        remappings: The node's topic remappings, (from, to) pairs as the launch gives them.
    """

    cameras: Sequence[str] = DEFAULT_CAMERAS
    namespace: str = ''
    fixed_frame: str = ''
    outputs: Sequence[str] = field(default_factory=lambda: [n for n, _ in SHOWN_OUTPUTS])
    remappings: Sequence[Tuple[str, str]] = ()

    def resolve(self, name: str) -> str:
        """``/<namespace>/<name>``, or ``name`` itself when it is absolute."""
        if name.startswith('/'):
            return '/' + name.strip('/')
        return '/' + '/'.join(p for p in (self.namespace.strip('/'), name.strip('/')) if p)

    def topic(self, camera: str, output: str) -> str:
        """The topic the node publishes ``output`` of ``camera`` on, after remapping."""
        topic = self.resolve(output_topic(camera, output))
        for source, target in self.remappings:
            if self.resolve(source) == topic:
                return self.resolve(target)
        return topic

    def frame(self) -> str:
        if self.fixed_frame.strip():
            return self.fixed_frame.strip()
        return self.cameras[0].strip('/').replace('/', '_') + OPTICAL_FRAME_SUFFIX


def _image_display(name: str, topic: str) -> Dict[str, Any]:
    return {
        'Class': 'rviz_default_plugins/Image', 'Enabled': True, 'Max Value': 1,
        'Median window': 5, 'Min Value': 0, 'Name': name, 'Normalize Range': False,
        'Topic': {'Depth': 1, 'Durability Policy': 'Volatile', 'History Policy': 'Keep Last',
                  'Reliability Policy': 'Reliable', 'Value': topic},
        'Value': True}


def rviz_config(view: RvizView) -> Dict[str, Any]:
    """The ``.rviz`` document (a YAML mapping) of ``view``.

    Raises:
        ValueError: no camera, or nothing to show.
    """
    if not view.cameras:
        raise ValueError('RViz config: no camera to show')
    shown = [(name, title) for name, title in SHOWN_OUTPUTS if name in view.outputs]
    if not shown:
        raise ValueError('RViz config: the node publishes none of '
                         f'{", ".join(n for n, _ in SHOWN_OUTPUTS)}')
    displays: List[Dict[str, Any]] = []
    for camera in view.cameras:
        label = view.resolve(camera).lstrip('/')
        displays += [_image_display(f'{label} {title}', view.topic(camera, name))
                     for name, title in shown]
    geometry: Dict[str, Any] = {'Displays': {'collapsed': False}, 'Height': 1000,
                                'Hide Left Dock': False, 'Hide Right Dock': True}
    geometry.update({display['Name']: {'collapsed': False} for display in displays})
    geometry.update({'Views': {'collapsed': True}, 'Width': 1600, 'X': 0, 'Y': 0})
    return {
        'Panels': [
            {'Class': 'rviz_common/Displays', 'Help Height': 78, 'Name': 'Displays',
             'Property Tree Widget': {'Expanded': ['/Global Options1'],
                                      'Splitter Ratio': 0.5},
             'Tree Height': 400},
            {'Class': 'rviz_common/Views', 'Expanded': ['/Current View1'], 'Name': 'Views',
             'Splitter Ratio': 0.5}],
        'Visualization Manager': {
            'Class': '', 'Displays': displays, 'Enabled': True,
            'Global Options': {'Background Color': '48; 48; 48', 'Fixed Frame': view.frame(),
                               'Frame Rate': 30},
            'Name': 'root',
            'Tools': [{'Class': 'rviz_default_plugins/Interact', 'Hide Inactive Objects': True},
                      {'Class': 'rviz_default_plugins/MoveCamera'}],
            'Transformation': {'Current': {'Class': 'rviz_default_plugins/TF'}},
            'Value': True,
            'Views': {'Current': {'Class': 'rviz_default_plugins/Orbit', 'Distance': 10,
                                  'Name': 'Current View', 'Target Frame': '<Fixed Frame>',
                                  'Value': 'Orbit (rviz)'},
                      'Saved': None}},
        'Window Geometry': geometry,
    }


def rviz_config_text(view: RvizView) -> str:
    """``rviz_config`` as the text of a ``.rviz`` file."""
    return yaml.safe_dump(rviz_config(view), default_flow_style=False, sort_keys=False,
                          width=99)


def node_parameters(params_file: Optional[str], node_name: str,
                    namespace: str = '') -> Dict[str, Any]:
    """The ``ros__parameters`` a params file gives the node (``/**`` first, then its name).

    Raises:
        ValueError: the file cannot be read or is not a ROS params file.
    """
    if not params_file:
        return {}
    try:
        with open(params_file, 'r', encoding='utf-8') as stream:
            data = yaml.safe_load(stream) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f'params file {params_file}: {error}') from None
    if not isinstance(data, dict):
        raise ValueError(f'params file {params_file} is not a mapping of node names')
    full_name = '/' + '/'.join(p for p in (namespace.strip('/'), node_name) if p)
    values: Dict[str, Any] = {}
    for key in ('/**', node_name, full_name.lstrip('/'), full_name):
        section = data.get(key)
        if isinstance(section, dict) and isinstance(section.get('ros__parameters'), dict):
            values.update(section['ros__parameters'])
    return values


def launch_view(params: Mapping[str, Any], namespace: str = '', fixed_frame: str = '',
                remappings: Sequence[Tuple[str, str]] = ()) -> RvizView:
    """The view of a launched node from its parameters (params file values + overrides)."""
    cameras = params.get('cameras') or DEFAULT_CAMERAS
    if isinstance(cameras, str):
        cameras = [c.strip() for c in cameras.split(',') if c.strip()]
    outputs = [name for name, _ in SHOWN_OUTPUTS
               if params.get(f'publish_{name}', True) not in (False, 'false', 'False')]
    return RvizView(cameras=tuple(str(c) for c in cameras), namespace=namespace,
                    fixed_frame=fixed_frame, outputs=outputs, remappings=tuple(remappings))


def write_rviz_config(view: RvizView, directory: Optional[str] = None) -> str:
    """Write ``view``'s config to a new temporary ``.rviz`` file; returns its path."""
    handle, path = tempfile.mkstemp(prefix='seg_perception_', suffix='.rviz', dir=directory)
    with os.fdopen(handle, 'w', encoding='utf-8') as stream:
        stream.write(rviz_config_text(view))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the config of ``--cameras`` (comma-separated) to stdout."""
    parser = argparse.ArgumentParser(description='print an RViz config for seg_perception')
    parser.add_argument('--cameras', default=','.join(DEFAULT_CAMERAS))
    parser.add_argument('--namespace', default='')
    parser.add_argument('--fixed-frame', default='')
    args = parser.parse_args(argv)
    view = RvizView(cameras=tuple(c.strip() for c in args.cameras.split(',') if c.strip()),
                    namespace=args.namespace, fixed_frame=args.fixed_frame)
    sys.stdout.write(rviz_config_text(view))
    return 0


if __name__ == '__main__':
    sys.exit(main())
