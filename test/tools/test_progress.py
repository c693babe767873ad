"""tools.progress: the one progress bar (counts, rate, ETA) on a terminal and in a log."""

import io

from seg_perception.tools.progress import format_duration, ProgressBar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_format_duration():
    assert format_duration(0) == '0:00'
    assert format_duration(75) == '1:15'
    assert format_duration(3700) == '1:01:40'
    assert format_duration(-5) == '0:00'


def test_log_stream_gets_plain_lines_and_a_final_line():
    stream = io.StringIO()
    bar = ProgressBar(20, 'scoring', stream=stream)
    for done in range(1, 21):
        bar.update(done, 'loss 0.5')
    bar.finish('loss 0.4')
    lines = stream.getvalue().splitlines()
    assert '\r' not in stream.getvalue()
    assert 5 <= len(lines) <= 12
    assert all(line.startswith('scoring [') for line in lines)
    assert lines[-1].startswith('scoring [' + '#' * 30 + '] 20/20 100%')
    assert lines[-1].endswith('loss 0.4')


def test_terminal_redraws_one_line():
    stream = _Terminal()
    bar = ProgressBar(4, 'network', stream=stream)
    bar.update(4)
    bar.finish()
    text = stream.getvalue()
    assert text.startswith('\rnetwork [') and '\x1b[K' in text and text.endswith('\n')
    assert text.count('\n') == 1


def test_unknown_total_and_disabled():
    stream = io.StringIO()
    bar = ProgressBar(None, stream=stream)
    bar.update(3)
    assert bar.line().startswith('3 ')
    silent = io.StringIO()
    off = ProgressBar(10, 'eval', stream=silent, enabled=False)
    off.update(10)
    off.finish()
    assert silent.getvalue() == ''
