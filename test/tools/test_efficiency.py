"""bench --efficiency: the profile split into network and post-processing, the report lines."""

from seg_perception.tools.efficiency import format_efficiency, summarize_profile


def _run(start, nodes):
    events = [{'cat': 'Session', 'name': 'model_run', 'ts': start, 'dur': 100}]
    for offset, (name, op, dur) in enumerate(nodes):
        events.append({'cat': 'Node', 'name': f'{name}_kernel_time', 'ts': start + offset,
                       'dur': dur, 'args': {'op_name': op}})
    return events


def test_postprocess_share_comes_from_postprocess_scoped_nodes_and_skips_the_first_run():
    nodes = [('/network/conv/Conv', 'Conv', 3000), ('/postprocess/ArgMax', 'ArgMax', 1000)]
    events = _run(0, [('/network/conv/Conv', 'Conv', 90000)]) + _run(1000, nodes) \
        + _run(2000, nodes)
    profile = summarize_profile(events)
    assert profile.runs == 2
    assert profile.total_ms == 4.0 and profile.postprocess_ms == 1.0
    assert profile.postprocess_share == 0.25 and profile.network_ms == 3.0
    assert profile.by_op == [('ArgMax', 1.0)] and profile.network_by_op == [('Conv', 3.0)]
    text = format_efficiency(6.0, profile, {'matmul': 400.0, 'conv': 300.0}, 20.0)
    assert '2000 GFLOP/s' in text and '25.0 %' in text and 'ArgMax 1.0' in text
