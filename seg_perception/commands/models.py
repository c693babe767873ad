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
        from ..zoo import list_zoo
    except ImportError:
        return 0
    zoo = list_zoo()
    if zoo:
        print('zoo models (shipped, ready to run):')
        for entry in zoo:
            print(f'  {entry}')
    return 0
