"""pipeline/latest_frame.py: the newest-frame store between camera callbacks and the worker."""

import threading

import pytest

from seg_perception.pipeline.latest_frame import LatestFrameStore


def test_store_keeps_newest_and_counts_drops():
    store = LatestFrameStore(['a', 'b'])
    assert not store.put('a', 1)
    assert store.put('a', 2)
    store.put('b', 10)
    assert store.pending() == ['a', 'b']
    assert store.take('a') == 2 and store.take('a') is None
    assert store.take_all() == {'b': 10}
    assert store.counts('a').received == 2 and store.counts('a').dropped == 1
    with pytest.raises(KeyError, match="unknown camera 'c'; cameras: a, b"):
        store.put('c', 0)


def test_store_wait_times_out_and_close_wakes_waiter():
    store = LatestFrameStore(['a'])
    assert store.wait_for_any(timeout=0.01) is False
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_any(timeout=30)))
    waiter.start()
    store.close()
    waiter.join(5)
    assert woke == [False] and not waiter.is_alive()


def test_store_accounting_under_concurrent_producers():
    store = LatestFrameStore(['a', 'b'])
    taken = {'a': 0, 'b': 0}
    done = threading.Event()

    def consume():
        while not done.is_set() or store.pending():
            if store.wait_for_any(timeout=0.01):
                for key in store.take_all():
                    taken[key] += 1

    def produce(key):
        for index in range(2000):
            store.put(key, index)

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [threading.Thread(target=produce, args=(key,)) for key in ('a', 'b')]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    consumer.join(10)
    for key in ('a', 'b'):
        counts = store.counts(key)
        assert counts.received == 2000
        assert taken[key] + counts.dropped == 2000
