"""What the demo, the node and its benchmark set up before ROS starts: a model, a profile.

``resolve_demo_model`` picks the zoo's ENet panoptic package, or a random-weight export
cached under the user's cache directory when this installation ships no zoo;
``use_large_data_profile`` points Fast DDS at ``config/fastdds_large_data.xml`` for this
process and its children. Imports no rclpy.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

DEMO_MODEL = 'enet_panoptic'
DEMO_ARCHITECTURE = 'enet'
DEMO_TASK = 'panoptic'


def default_cache_dir() -> str:
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'seg_perception', 'demo')


def cached_demo_package(cache_dir: str, height: int, width: int) -> str:
    """Path of a random-weight ENet panoptic package in ``cache_dir``, exported when absent.

    The export goes to a temporary sibling renamed into place, so an interrupted export
    never leaves a half-written package in the cache.
    """
    import shutil
    import tempfile

    from ..manifest import ManifestError
    from ..packages.loading import load_model_package
    from .benchmark import export_random_package

    path = os.path.join(cache_dir, f'{DEMO_ARCHITECTURE}_{DEMO_TASK}_{width}x{height}_b2')
    if os.path.isdir(path):
        try:
            load_model_package(path)
            return path
        except (ManifestError, OSError) as error:
            print(f'cached package {path} is unusable ({error}); exporting it again')
            shutil.rmtree(path)
    os.makedirs(cache_dir, exist_ok=True)
    print(f'exporting a randomly initialised {DEMO_ARCHITECTURE} ({DEMO_TASK}) '
          f'{width}x{height} to {path}...', flush=True)
    scratch = tempfile.mkdtemp(prefix='.export-', dir=cache_dir)
    try:
        export_random_package(DEMO_ARCHITECTURE, DEMO_TASK, height, width, scratch, batch=2)
        os.replace(scratch, path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return path


def resolve_demo_model(model: Optional[str], cache_dir: str, height: int,
                       width: int) -> Tuple[str, bool]:
    """(model parameter for the node, whether it is trained).

    Args:
        model: The user's choice (zoo name or package path), or None.
        cache_dir: Where the random-weight fallback package is kept.
        height, width: Camera image size; the fallback's network runs at half of it.
    """
    if model:
        return model, True
    from ..packages.zoo import list_zoo
    if DEMO_MODEL in list_zoo():
        return DEMO_MODEL, True
    return cached_demo_package(cache_dir, height // 2, width // 2), False


def large_data_profile() -> str:
    """Path of config/fastdds_large_data.xml (installed share directory or source tree)."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(os.path.join(get_package_share_directory('seg_perception'), 'config'))
    except (ImportError, LookupError, ValueError, OSError):  # not installed with colcon
        pass
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates.append(os.path.join(here, 'config'))
    for folder in candidates:
        path = os.path.join(folder, 'fastdds_large_data.xml')
        if os.path.isfile(path):
            return path
    raise FileNotFoundError('config/fastdds_large_data.xml not found in ' + ', '.join(candidates))


#: RMW implementations built on Fast DDS (the profile is theirs).
FAST_DDS_RMWS = ('rmw_fastrtps_cpp', 'rmw_fastrtps_dynamic_cpp')
#: Environment variables by which a user chooses Fast DDS's transports; any one of them set
#: means the user's choice stands.
FAST_DDS_TRANSPORT_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                                'FASTDDS_BUILTIN_TRANSPORTS')


def use_large_data_profile() -> str:
    """Point Fast DDS at the large-data profile for this process and its children.

    Must run before the first ROS participant of the process is created. Leaves another
    RMW alone, and a transport the user chose (a profile file, or
    ``FASTDDS_BUILTIN_TRANSPORTS``, e.g. ``DEFAULT`` to keep Fast DDS's own). Returns what it
    did, for the log.
    """
    rmw = os.environ.get('RMW_IMPLEMENTATION') or 'rmw_fastrtps_cpp'
    if rmw not in FAST_DDS_RMWS:
        return f'RMW {rmw}: no Fast DDS profile'
    for variable in FAST_DDS_TRANSPORT_VARIABLES:
        if os.environ.get(variable):
            return f'Fast DDS transport from ${variable}: {os.environ[variable]}'
    variables = large_data_profile_env()
    os.environ.update(variables)
    return (f'Fast DDS profile {variables["FASTDDS_DEFAULT_PROFILES_FILE"]} (full-size images '
            'without fragment loss)')


def large_data_profile_env() -> Dict[str, str]:
    """The environment variables that load the large-data profile in a new process."""
    path = large_data_profile()
    variables = {'FASTDDS_DEFAULT_PROFILES_FILE': path}
    if os.environ.get('ROS_DISTRO') in ('humble', 'iron', 'jazzy'):  # Fast DDS 2.x name
        variables['FASTRTPS_DEFAULT_PROFILES_FILE'] = path
    return variables
