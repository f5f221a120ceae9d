import threading
import time
import weakref

import pytest

from detforge.serving.batching import BatcherBusy, MicroBatcher, run_grouped


def _gated_predict():
    """``(calls, gate, predict)``: ``predict`` records each batch, then waits for the gate."""
    calls = []
    gate = threading.Event()

    def predict(items):
        calls.append(list(items))
        gate.wait(5)
        return [x * 10 for x in items]

    return calls, gate, predict


def test_batches_concurrent_submissions_and_keeps_order():
    calls, gate, predict = _gated_predict()
    batcher = MicroBatcher(predict, max_batch=4, max_wait_ms=0)
    batcher.start()
    first = batcher.submit(0)  # occupies the worker until the gate opens
    time.sleep(0.1)
    futures = [batcher.submit(i) for i in range(1, 10)]
    gate.set()
    assert first.result(5) == 0
    assert [f.result(5) for f in futures] == [i * 10 for i in range(1, 10)]
    batcher.stop()
    assert calls == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    stats = batcher.stats()
    assert stats["batches"] == 4 and stats["images"] == 10 and stats["max_batch_seen"] == 4
    assert stats["batch_sizes"] == {1: 2, 4: 2}


def test_a_bad_item_fails_alone():
    def predict(items):
        if "bad" in items:
            raise ValueError("cannot handle 'bad'")
        return [x.upper() for x in items]

    batcher = MicroBatcher(predict, max_batch=8, max_wait_ms=50)
    batcher.start()
    futures = [batcher.submit(x) for x in ("a", "bad", "c")]
    assert futures[0].result(5) == "A" and futures[2].result(5) == "C"
    with pytest.raises(ValueError, match="'bad'"):
        futures[1].result(5)
    assert batcher.stats()["errors"] == 1
    batcher.stop()


def test_wrong_result_count_and_busy_queue():
    batcher = MicroBatcher(lambda items: [], max_batch=2)
    with pytest.raises(BatcherBusy, match="not running"):
        batcher.submit(1)
    batcher.start()
    with pytest.raises(RuntimeError, match="0 results for 1 inputs"):
        batcher.submit(1).result(5)
    batcher.stop()

    gate = threading.Event()
    slow = MicroBatcher(lambda items: gate.wait(5) and list(items), max_batch=1, max_queue=2)
    slow.start()
    slow.submit(0)
    time.sleep(0.1)  # the worker holds item 0; two more fill the queue
    slow.submit(1), slow.submit(2)
    with pytest.raises(BatcherBusy, match="queue is full"):
        slow.submit(3)
    gate.set()
    slow.stop()
    assert slow.stats()["images"] == 3
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda items: items, max_batch=0)


def test_batch_key_keeps_different_keys_apart_in_arrival_order():
    calls, gate, predict = _gated_predict()
    batcher = MicroBatcher(predict, max_batch=3, max_wait_ms=0, batch_key=lambda x: x % 2)
    batcher.start()
    first = batcher.submit(0)  # occupies the worker until the gate opens
    while not calls:
        time.sleep(0.01)
    futures = [batcher.submit(i) for i in (1, 2, 3, 4, 5, 6, 7)]
    gate.set()
    assert first.result(5) == 0
    assert [f.result(5) for f in futures] == [10, 20, 30, 40, 50, 60, 70]
    batcher.stop()
    # the oldest waiting item opens each batch; only its kind joins, up to max_batch
    assert calls == [[0], [1, 3, 5], [2, 4, 6], [7]]


def test_a_finished_batch_lets_go_of_its_items():
    class Payload:
        pass

    batcher = MicroBatcher(lambda items: [1] * len(items), max_wait_ms=0)
    batcher.start()
    payload = Payload()
    alive = weakref.ref(payload)
    assert batcher.submit(payload).result(5) == 1
    del payload
    # the worker idles now; it must not keep the last batch (a decoded image) alive
    deadline = time.monotonic() + 5
    while alive() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert alive() is None
    batcher.stop()


def test_stop_finishes_queued_items_and_refuses_new_ones():
    gate = threading.Event()
    batcher = MicroBatcher(lambda items: gate.wait(5) and list(items), max_batch=1)
    batcher.start()
    futures = [batcher.submit(i) for i in range(3)]
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    while not batcher._stopping:
        time.sleep(0.01)
    with pytest.raises(BatcherBusy, match="not running"):
        batcher.submit(9)
    gate.set()
    stopper.join(10)
    assert [f.result(5) for f in futures] == [0, 1, 2]


def test_run_grouped_runs_each_key_once_in_order():
    calls = []

    def predict(items):
        calls.append(list(items))
        return [-x for x in items]

    assert run_grouped(predict, [1, 2, 3, 4, 5], key=lambda x: x % 2) == [-1, -2, -3, -4, -5]
    assert calls == [[1, 3, 5], [2, 4]]
    with pytest.raises(RuntimeError, match="0 results for 2 inputs"):
        run_grouped(lambda items: [], [1, 2], key=lambda x: 0)
