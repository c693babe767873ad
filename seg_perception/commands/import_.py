"""``seg-perception import``: a model users already have -> a model package for the node.

``seg-perception import SOURCE ...`` with SOURCE one of ``onnx`` (any semantic segmentation
graph), ``torchvision`` (torchvision's published segmentation checkpoints) or
``pytorch-enet`` (davidtvs/PyTorch-ENet checkpoints). Each source's arguments and run live
in ``commands/_import_<source>.py``; the conversion itself in
``seg_perception.packages.importers``.
"""

from __future__ import annotations

import importlib

HELP = ('import a model you already have (any segmentation ONNX, torchvision or PyTorch-ENet '
        'checkpoint) as a model package')

#: Source name -> command module (``add_arguments(parser)``, ``main(args)``, ``HELP``).
SOURCES = {
    'onnx': '_import_onnx',
    'torchvision': '_import_torchvision',
    'pytorch-enet': '_import_pytorch_enet',
}


def _source_module(name: str):
    return importlib.import_module(f'{__package__}.{SOURCES[name]}')


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest='source', metavar='SOURCE')
    for name in SOURCES:
        module = _source_module(name)
        source_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(source_parser)
        source_parser.set_defaults(_source_module=module)


def main(args) -> int:
    module = getattr(args, '_source_module', None)
    if module is None:
        print('seg-perception import: choose a source: ' + ', '.join(SOURCES))
        return 2
    return int(module.main(args) or 0)
