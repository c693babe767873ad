"""``seg-perception models``: list registered architectures (and shipped zoo models)."""

from __future__ import annotations

HELP = 'list the registered model architectures and the shipped zoo models'


def add_arguments(parser) -> None:
    parser.add_argument('--names', action='store_true', help='print bare names only')


def main(args) -> int:
    from ..models import get_model_spec, list_models
    names = list_models()
    if args.names:
        print('\n'.join(names))
        return 0
    print('architectures:')
    width = max(len(n) for n in names)
    for name in names:
        print(f'  {name:<{width}}  {get_model_spec(name).description}')
    try:
        from ..packages.zoo import list_zoo
    except ImportError:
        return 0
    zoo = list_zoo()
    if zoo:
        print('zoo models (shipped, ready to run):')
        width = max(len(n) for n in zoo)
        for entry in zoo:
            print(f'  {entry:<{width}}  {_describe_zoo_model(entry)}')
    return 0


def _describe_zoo_model(name: str) -> str:
    """``architecture, task, WxH network input`` from the package's manifest."""
    from ..manifest import ManifestError, ModelManifest
    from ..packages.zoo import resolve_model
    try:
        manifest = ModelManifest.load(resolve_model(name))
    except (ManifestError, OSError) as error:
        return f'unreadable manifest: {error}'
    flip = ', test-time flip' if manifest.flip_test else ''
    return (f'{manifest.architecture}, {manifest.task}, network input '
            f'{manifest.input_width}x{manifest.input_height}{flip}')
