"""A bag's ``metadata.yaml`` in the version the target ROS 2 distribution's rosbag2 reads.

rosbags writes metadata version 8 or 9; each distribution's rosbag2 writes, and reads in
full, one version (``rosbag2_storage``'s ``BagMetadata::version`` on that branch):

    humble 5   offered_qos_profiles: one YAML string, integer policies; no custom_data,
               type_description_hash or ros_distro (Humble's decoder reads the string with
               ``as<std::string>()``, so version 9's list stops ``ros2 bag play`` / ``info``)
    iron   7   the same string; custom_data and type_description_hash, no ros_distro
    jazzy  9   offered_qos_profiles: a list of maps with policy names; ros_distro
    kilted 9   as Jazzy (rosbag2 0.32 did not change the metadata)

The storage is written as rosbags' version 8 for Humble and Iron (their players parse the
topics' QoS strings with integer policies), then ``metadata.yaml`` is rewritten as the
older version, dropping the fields that version does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Dict, Mapping, Optional

import yaml

DISTRO_CHOICES = ('humble', 'iron', 'jazzy', 'kilted')
DEFAULT_DISTRO = 'humble'
METADATA_FILE = 'metadata.yaml'
#: The ``--distro`` help of the commands.
DISTRO_HELP = 'default: $ROS_DISTRO when it is one of these, else humble'


class MetadataError(ValueError):
    """A bag's metadata.yaml cannot be written in the version a distribution reads."""


@dataclass(frozen=True)
class BagFormat:
    """How to write a bag that one ROS 2 distribution reads.

    Attributes:
        distro: ``humble`` .. ``kilted``.
        version: The ``metadata.yaml`` version that distribution's rosbag2 writes.
        storage_version: The version rosbags writes the storage (and QoS strings) with.
    """

    distro: str
    version: int
    storage_version: int

    @property
    def qos_as_string(self) -> bool:
        """Whether ``offered_qos_profiles`` is one YAML string (versions 4-8)."""
        return self.version < 9


BAG_FORMATS: Dict[str, BagFormat] = {
    'humble': BagFormat('humble', 5, 8),
    'iron': BagFormat('iron', 7, 8),
    'jazzy': BagFormat('jazzy', 9, 9),
    'kilted': BagFormat('kilted', 9, 9),
}

#: Field of rosbag2_bagfile_information (or of topic_metadata) -> first version that has it.
_BAG_FIELDS_SINCE = {'custom_data': 6, 'ros_distro': 8}
_TOPIC_FIELDS_SINCE = {'type_description_hash': 7}


def default_distro(environ: Optional[Mapping[str, str]] = None) -> str:
    """``$ROS_DISTRO`` when it is one of ``DISTRO_CHOICES``, else ``DEFAULT_DISTRO``."""
    value = (os.environ if environ is None else environ).get('ROS_DISTRO', '').strip().lower()
    return value if value in DISTRO_CHOICES else DEFAULT_DISTRO


def bag_format(distro: str) -> BagFormat:
    """The format of ``distro``; raises MetadataError naming the choices."""
    try:
        return BAG_FORMATS[distro]
    except KeyError:
        raise MetadataError(f'ROS distribution {distro!r} is not one of '
                            f'{", ".join(DISTRO_CHOICES)}') from None


def downgrade(information: dict, target: BagFormat) -> dict:
    """``rosbag2_bagfile_information`` rewritten as ``target.version``.

    Args:
        information: The mapping rosbags wrote, version ``target.storage_version``.

    Raises:
        MetadataError: it is another version, or its QoS profiles are not a string.
    """
    found = information.get('version')
    if found != target.storage_version:
        raise MetadataError(f'metadata.yaml has version {found!r}; expected '
                            f'{target.storage_version} from rosbags')
    result = {key: value for key, value in information.items()
              if _BAG_FIELDS_SINCE.get(key, 0) <= target.version}
    result['version'] = target.version
    topics = []
    for entry in information.get('topics_with_message_count') or []:
        topic = {key: value for key, value in entry['topic_metadata'].items()
                 if _TOPIC_FIELDS_SINCE.get(key, 0) <= target.version}
        if target.qos_as_string and not isinstance(topic.get('offered_qos_profiles'), str):
            raise MetadataError(f'topic {topic.get("name")}: offered_qos_profiles is not a '
                                f'string, which version {target.version} needs')
        topics.append({**entry, 'topic_metadata': topic})
    result['topics_with_message_count'] = topics
    return result


def rewrite_metadata(bag_dir: str, target: BagFormat) -> None:
    """Rewrite ``bag_dir/metadata.yaml`` (as rosbags closed it) in ``target``'s version.

    A no-op when rosbags already wrote that version. The file is replaced atomically.

    Raises:
        MetadataError: the file is not what rosbags writes.
        OSError: it cannot be read or written (a full disk: the old file stays).
    """
    if target.version == target.storage_version:
        return
    path = os.path.join(bag_dir, METADATA_FILE)
    with open(path, 'r', encoding='utf-8') as stream:
        try:
            information = yaml.safe_load(stream)['rosbag2_bagfile_information']
        except (yaml.YAMLError, KeyError, TypeError) as error:
            raise MetadataError(f'cannot read {path}: {type(error).__name__}: '
                                f'{error}') from None
    text = yaml.safe_dump({'rosbag2_bagfile_information': downgrade(information, target)},
                          default_flow_style=False, sort_keys=False)
    temporary = path + '.tmp'
    try:
        with open(temporary, 'w', encoding='utf-8') as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
