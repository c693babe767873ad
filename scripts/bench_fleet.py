"""Fleet evaluation throughput: bags/minute with 1 and 2 local worker processes.

Usage: ``python scripts/bench_fleet.py [--bags 8] [--frames 6] [--ray]``. Writes small
synthetic bags and a random ENet package (64x128) into a temporary folder and evaluates
them with ``--jobs 1`` and ``--jobs 2`` (and a local Ray of 2 CPUs with ``--ray``); prints
bags/minute for each, wall time including the workers' start-up and model load.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'test'))


def main() -> None:
    from seg_test_models import export_lively_package

    from seg_perception.bags.synthetic_bag import write_synthetic_bag
    from seg_perception.evaluation.config import EvalConfig
    from seg_perception.evaluation.fleet import FleetConfig, run_fleet
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bags', type=int, default=8)
    parser.add_argument('--frames', type=int, default=6)
    parser.add_argument('--ray', action='store_true')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        package = export_lively_package('enet', 'panoptic', 64, 128,
                                        os.path.join(root, 'package'))
        bags = [os.path.join(root, f'bag{i}') for i in range(args.bags)]
        for index, bag in enumerate(bags):
            write_synthetic_bag(bag, frames=args.frames, width=256, height=128, seed=index)
        template = EvalConfig(out_dir='', model=package, backend='onnxruntime', device='cpu',
                              threads=1, image_topics=['/cam0/image_raw'], report_format='none')
        runs = [('1 process', {'jobs': 1}), ('2 processes', {'jobs': 2})]
        if args.ray:
            import ray
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            runs.append(('ray, 2 CPUs', {'ray_address': ''}))
        for label, options in runs:
            started = time.monotonic()
            metrics = run_fleet(FleetConfig(bags=bags, template=template,
                                            out_dir=os.path.join(root, label.replace(' ', '_')),
                                            **options), log=lambda line: None)
            seconds = time.monotonic() - started
            print(f'{label}: {len(bags)} bags x {args.frames} frames in {seconds:.1f} s = '
                  f'{60.0 * len(bags) / seconds:.1f} bags/minute '
                  f'(mIoU {metrics["semantic"]["mean_iou"]:.6f})')


if __name__ == '__main__':
    main()
