"""torchvision's six segmentation networks in plain PyTorch (torchvision is never imported).

State-dict names and shapes equal torchvision's, so its checkpoints load with
``strict=True`` (``aux_classifier.*`` apart); see ``segmentation`` for the registered names
(``torchvision_fcn_resnet50`` ...) and ``seg_perception.packages.importers.torchvision``
for the import into a model package.
"""

from .segmentation import (  # noqa: F401
    TORCHVISION_ARCHITECTURES,
    TorchvisionArchitecture,
    TorchvisionSegmentation,
)
