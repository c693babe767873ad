from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'seg_perception'


def package_files(directory, patterns):
    files = []
    for pattern in patterns:
        files.extend(f for f in glob(os.path.join(directory, pattern)) if os.path.isfile(f))
    return sorted(files)


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['zoo/*/*', 'config/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', package_files('launch', ['*.launch.py'])),
        ('share/' + package_name + '/config', package_files('config', ['*.yaml', '*.rviz',
                                                                     '*.xml'])),
    ],
    install_requires=['setuptools', 'numpy', 'pyyaml'],
    zip_safe=True,
    maintainer='seg_perception developers',
    maintainer_email='maintainers@users.noreply.example',
    description='Semantic, instance and panoptic segmentation for ROS 2 cameras '
                '(ENet, DeepLab, FCN, U-Net, PSPNet; TensorRT, ONNX Runtime, PyTorch).',
    license='Apache-2.0',
    extras_require={'test': ['pytest'], 'ray': ['ray>=2.30']},
    entry_points={
        'console_scripts': [
            'seg_perception_node = seg_perception.ros.node:main',
            'seg_perception_lifecycle_node = seg_perception.ros.lifecycle_node:main',
            'seg-perception = seg_perception.cli:main',
        ],
    },
)
