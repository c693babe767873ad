"""The ROS side's pure helpers that need rclpy: the node benchmark's CDR header-stamp reader and
report format."""

import pytest


def test_benchmark_reads_header_stamp_from_cdr_and_formats_report():
    pytest.importorskip('rclpy')
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from seg_perception.ros.node_benchmark import (
        format_node_report,
        header_stamp,
        NodeBenchmarkReport,
    )
    msg = Image(encoding='rgb8')
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000123, 456789
    msg.header.frame_id = 'a_rather_long_frame_id'
    assert header_stamp(serialize_message(msg)) == (1700000123, 456789)
    report = NodeBenchmarkReport('m', 'onnxruntime', '1024x512', 100.0, 105.0, 5.0, 100.0,
                                 112.0, 12.0, 9.0, 15.0, 10.0, 480.0, 10)
    text = format_node_report(report)
    assert '| node: camera publish -> panoptic received | 105 ms (+5.0 % vs Segmenter) |' \
        in text
    assert '480 MiB' in text
