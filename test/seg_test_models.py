"""Exported packages of registered architectures whose random outputs are not degenerate.

A freshly initialised network predicts nearly constant maps, and its centre heatmap often
stays below any threshold, so a panoptic graph would find no instance at all and a parity
or consistency test could pass without ever exercising the grouping. Rescaling the
instance head's last layer to a set spread (``_liven_instance_head``) keeps the network
random but gives many instance centres, decided by margins far above rounding.
"""

import torch

from seg_perception.export.onnx_export import export_model_package
from seg_perception.manifest import ModelManifest
from seg_perception.models.heads import InstanceHead
from seg_perception.models.registry import build_model


def export_lively_package(architecture: str, task: str, height: int, width: int,
                          out_dir: str, batch: int = 1, seed: int = 0,
                          flip_test: bool = False) -> str:
    """Export ``architecture`` (random weights, livened up) to ``out_dir``; returns it."""
    torch.manual_seed(seed)
    manifest = ModelManifest(name=f'{architecture}_{task}_test', architecture=architecture,
                             task=task, input_height=height, input_width=width, batch=batch,
                             flip_test=flip_test)
    network = build_model(architecture, num_classes=manifest.label_set.num_classes,
                          panoptic=task == 'panoptic').eval()
    heads = [module for module in network.modules() if isinstance(module, InstanceHead)]
    if heads:
        _liven_instance_head(network, heads[0], height, width)
    export_model_package(network, manifest, out_dir)
    return out_dir


def _liven_instance_head(network, head: InstanceHead, height: int, width: int) -> None:
    """Rescale the head's 1x1 predictor so that on smooth images the heatmap varies by ~0.15
    around 0.3 and the offsets by ~6 feature-map pixels: far above the float differences
    between backends, so centres and groupings do not hinge on rounding."""
    generator = torch.Generator().manual_seed(1)
    coarse = torch.rand((2, 3, max(1, height // 16), max(1, width // 16)), generator=generator)
    images = torch.nn.functional.interpolate(coarse * 4.0 - 2.0, size=(height, width),
                                             mode='bicubic', align_corners=False)
    captured = {}
    hook = head.predict.register_forward_hook(lambda module, args, out: captured.update(out=out))
    try:
        with torch.no_grad():
            network(images)
    finally:
        hook.remove()
    spread = captured['out'].std(dim=(0, 2, 3)).clamp(min=1e-8)
    with torch.no_grad():
        head.predict.weight.mul_((torch.tensor([0.15, 6.0, 6.0]) / spread).view(3, 1, 1, 1))
        head.predict.bias.copy_(torch.tensor([0.3, 0.0, 0.0]))
