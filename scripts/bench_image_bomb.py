#!/usr/bin/env python3
"""What a PNG decompression bomb costs seg_perception_node: memory and time.

Starts the node (``input_transport: compressed``, one camera ``cam``, every default output
subscribed), sends a 16 KB PNG that decodes to ``--width`` x ``--height`` (16384 x 8192 by
default) as the camera's FIRST frame, then a normal 1024x512 JPEG until the node answers it,
and prints: the node's resident memory before, its peak (VmHWM) and after; seconds from the
bomb to the first answer of a normal frame; whether the bomb was answered (segmented) or
rejected (the reason from /diagnostics). ``--pythonpath`` runs the node from another
checkout (e.g. an older commit, to compare). Example:

    .venv/bin/python scripts/bench_image_bomb.py --model enet_panoptic
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))


def memory_mib(pid: int) -> dict:
    values = {}
    with open(f'/proc/{pid}/status', encoding='utf-8') as stream:
        for line in stream:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                values[line.split(':')[0]] = int(line.split()[1]) / 1024.0
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='enet_panoptic')
    parser.add_argument('--width', type=int, default=16384)
    parser.add_argument('--height', type=int, default=8192)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--domain-id', type=int, default=57)
    parser.add_argument('--pythonpath', default=None, help='checkout the node runs from')
    parser.add_argument('--timeout', type=float, default=300.0)
    args = parser.parse_args()

    from diagnostic_msgs.msg import DiagnosticArray
    from image_bombs import camera_jpeg, png_bomb
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header

    from seg_perception.pipeline.outputs import DEFAULT_OUTPUT_NAMES, output_topic
    from seg_perception.tools.node_process import node_command, stop_node

    command = node_command(args.model, 'onnxruntime', ['cam'], args.threads)
    command += ['-p', 'input_transport:=compressed']
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain_id))
    if args.pythonpath:
        env['PYTHONPATH'] = args.pythonpath
    node = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, cwd='/')
    rclpy.init(domain_id=args.domain_id)
    client = rclpy.create_node('bomb_bench')
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    publisher = client.create_publisher(CompressedImage, '/cam/image_raw/compressed', qos)
    answers, lock = [], threading.Lock()
    rejection = {}
    for output in DEFAULT_OUTPUT_NAMES:
        if output not in ('camera_info', 'detections'):
            client.create_subscription(
                Image, '/' + output_topic('cam', output),
                lambda raw, output=output: output == 'panoptic' and answers.append(
                    (time.monotonic(), len(raw))), qos, raw=True)

    def diagnostics(msg):
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith(': cam') and int(values.get('rejected', 0)):
                with lock:
                    rejection.setdefault('reason', values.get('last_rejection', ''))
                    rejection.setdefault('at', time.monotonic())
    client.create_subscription(DiagnosticArray, '/diagnostics', diagnostics, 10)
    def spin() -> None:
        while rclpy.ok():
            rclpy.spin_once(client, timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()

    def frame(data: bytes, codec: str):
        message = CompressedImage(header=Header(frame_id='cam'), format=codec)
        message.header.stamp = client.get_clock().now().to_msg()
        message.data = data
        return message

    huge = 4 * args.width * args.height  # a panoptic (int32) message of the bomb's size
    try:
        deadline = time.monotonic() + 120
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit('the node did not start')
            time.sleep(0.2)
        time.sleep(3.0)  # let the node's publishers match our subscriptions
        bomb = png_bomb(args.width, args.height)
        before = memory_mib(node.pid)
        start = time.monotonic()
        publisher.publish(frame(bomb, 'png'))
        while time.monotonic() - start < args.timeout and not rejection \
                and not any(size >= huge for _, size in answers):
            time.sleep(0.02)
        handled = time.monotonic() - start
        during = memory_mib(node.pid)
        jpeg = camera_jpeg(512, 1024)
        sent = time.monotonic()
        answered = None
        while answered is None and time.monotonic() - sent < args.timeout:
            count = len(answers)
            publisher.publish(frame(jpeg, 'jpeg'))
            wait = time.monotonic() + 2.0
            while time.monotonic() < wait and len(answers) == count:
                time.sleep(0.02)
            if any(size < huge for _, size in answers[count:]):
                answered = time.monotonic() - sent
        bomb_answers = [size for _, size in answers if size >= huge]
        print(f'bomb: {len(bomb)} bytes PNG, {args.width}x{args.height}, the first frame')
        print(f'node RSS before {before["VmRSS"]:.0f} MiB, peak until the bomb was handled '
              f'{during["VmHWM"]:.0f} MiB, after {during["VmRSS"]:.0f} MiB')
        if bomb_answers:
            print(f'bomb segmented and published after {handled:.1f} s '
                  f'({bomb_answers[0] / 2**20:.0f} MiB panoptic message)')
        elif rejection:
            print(f'bomb rejected, seen in /diagnostics (1 Hz) after {handled:.1f} s: '
                  f'{rejection["reason"]}')
        else:
            print(f'bomb neither answered nor rejected within {args.timeout:.0f} s')
        print('then a normal 1024x512 JPEG: answered after '
              + (f'{answered:.1f} s' if answered is not None else f'> {args.timeout:.0f} s'))
    finally:
        stop_node(node)
        rclpy.try_shutdown()
        spinner.join(5)
        client.destroy_node()
    return 0


if __name__ == '__main__':
    sys.exit(main())
