"""``seg-perception replay``: publish a bag over ROS 2 at the recorded timing."""

from __future__ import annotations

import signal
import sys
import threading

HELP = "publish a bag's topics over ROS 2 at recorded timing (ros2 bag play without rosbag2)"


def add_arguments(parser) -> None:
    from ..bags.bag_io import DISTRO_CHOICES
    from ..bags.metadata import DISTRO_HELP
    parser.add_argument('bag', help='bag directory, .mcap or .db3 file')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='playback speed factor (default 1.0)')
    parser.add_argument('--loop', action='store_true', help='start over at the end')
    parser.add_argument('--topics', nargs='+', default=None, metavar='T',
                        help='topics to publish (default all)')
    parser.add_argument('--delay', type=float, default=0.0, metavar='S',
                        help='seconds to wait after creating the publishers (default 0)')
    parser.add_argument('--distro', choices=DISTRO_CHOICES, default=None,
                        help=f'typestore used to open the bag ({DISTRO_HELP})')


def main(args) -> int:
    import importlib.util

    from ..bags.bag_io import BagError
    from ..ros.replay import replay_until_stopped
    if importlib.util.find_spec('rclpy') is None:
        print('seg-perception replay: error: rclpy is not available; source a ROS 2 '
              'installation', file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        stats = replay_until_stopped(args.bag, stop, rate=args.rate, loop=args.loop,
                                     topics=args.topics, delay_s=args.delay, distro=args.distro)
    except BagError as error:
        print(f'seg-perception replay: error: {error}', file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)
    total = sum(stats.published.values())
    print(f'published {total} messages on {len(stats.published)} topics in {stats.wall_s:.1f} s '
          f'({stats.loops} full pass(es)){" - stopped" if stop.is_set() else ""}')
    return 0
