"""The ROS side's pure helpers that need rclpy: the node benchmark's CDR header-stamp reader,
report format and the graph outputs it loads its Segmenter with."""

import pytest


def test_benchmark_reads_header_stamp_from_cdr_and_formats_report():
    pytest.importorskip('rclpy')
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from seg_perception.ros.node_benchmark import (
        CameraLoadRun,
        format_node_report,
        header_stamp,
        NodeBenchmarkReport,
    )
    msg = Image(encoding='rgb8')
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000123, 456789
    msg.header.frame_id = 'a_rather_long_frame_id'
    assert header_stamp(serialize_message(msg)) == (1700000123, 456789)
    runs = [CameraLoadRun(1, 'auto', 'auto (off: CPU backend)', 9.0, 120.0, 150.0, 72),
            CameraLoadRun(4, 'auto', 'auto (off: CPU backend)', 9.1, 126.0, 160.0, 73),
            CameraLoadRun(4, 'true', 'true (on)', 9.0, 450.0, 480.0, 72)]
    report = NodeBenchmarkReport('m', 'onnxruntime', '1024x512', 100.0, 105.0, 5.0, 100.0,
                                 112.0, 12.0, 20.0, runs, 480.0, 10,
                                 graph_outputs=['semantic', 'instance', 'panoptic'])
    text = format_node_report(report)
    assert 'graph outputs computed, by node and Segmenter alike: semantic, instance, ' \
        'panoptic\n' in text
    assert '| node: camera publish -> panoptic received | 105 ms (+5.0 % vs Segmenter) |' \
        in text
    assert '480 MiB' in text and 'every camera publishing at 20.0 Hz' in text
    assert '| 1 | auto (off: CPU backend) | 9.00 fps | 120 ms | 1.00x | 150 ms |' in text
    assert '| 4 | auto (off: CPU backend) | 9.10 fps | 126 ms | 1.05x | 160 ms |' in text
    assert '| 4 | true (on) | 9.00 fps | 450 ms | 3.75x | 480 ms |' in text


def test_benchmark_segmenter_loads_the_graph_outputs_of_the_node_under_test():
    """The bare Segmenter runs the graph the node runs: pruned as the node's switches say."""
    pytest.importorskip('rclpy')
    from seg_perception.pipeline.graph_outputs import DEFAULT_GRAPH_OUTPUTS
    from seg_perception.ros.node_benchmark import node_graph_outputs
    parameters = {'model': '/some/package', 'backend': 'onnxruntime', 'cameras': ['cam0'],
                  'threads': 1}
    assert node_graph_outputs(parameters) == DEFAULT_GRAPH_OUTPUTS
    assert 'confidence' not in DEFAULT_GRAPH_OUTPUTS
    assert node_graph_outputs({**parameters, 'publish_confidence': True}) == (
        'semantic', 'instance', 'panoptic', 'confidence', 'instance_score')
    assert node_graph_outputs({'publish_detections': False}) == (
        'semantic', 'instance', 'panoptic')
