"""Exported packages of registered architectures whose random outputs are not degenerate.

A freshly initialised network predicts nearly constant maps, and its centre heatmap often
stays below any threshold, so a panoptic graph would find no instance at all and a parity
or consistency test could pass without ever exercising the grouping. Raising the centre
branch's output bias and amplifying every head's last layer keeps the network random but
gives varied classes and many instance centres.
"""

import torch

from seg_perception.export import export_model_package
from seg_perception.manifest import ModelManifest
from seg_perception.models.heads import InstanceHead
from seg_perception.models.registry import build_model


def export_lively_package(architecture: str, task: str, height: int, width: int,
                          out_dir: str, batch: int = 1, seed: int = 0) -> str:
    """Export ``architecture`` (random weights, livened up) to ``out_dir``; returns it."""
    torch.manual_seed(seed)
    manifest = ModelManifest(name=f'{architecture}_{task}_test', architecture=architecture,
                             task=task, input_height=height, input_width=width, batch=batch)
    network = build_model(architecture, num_classes=manifest.label_set.num_classes,
                          panoptic=task == 'panoptic').eval()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, InstanceHead):
                module.center[-1].weight.mul_(4.0)
                module.center[-1].bias.fill_(0.5)
                module.offset[-1].weight.mul_(4.0)
    export_model_package(network, manifest, out_dir)
    return out_dir
