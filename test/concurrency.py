"""Run a function on several threads at once and hand back every result and every error."""

import threading
from typing import Any, Callable, Dict, List, Tuple


def run_concurrently(work: Callable[[int], Any], count: int,
                     timeout: float = 120.0) -> Tuple[Dict[int, Any], List[BaseException]]:
    """``work(index)`` on ``count`` threads started together (a barrier), each its own thread.

    Returns:
        ``(results by index, exceptions raised)``; a thread still running after ``timeout``
        seconds is an error too, so a test cannot pass with missing results.
    """
    barrier = threading.Barrier(count)
    results: Dict[int, Any] = {}
    errors: List[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            value = work(index)
            with lock:
                results[index] = value
        except BaseException as error:  # noqa: BLE001 - handed to the test
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=run, args=(i,), name=f'worker-{i}') for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        if thread.is_alive():
            errors.append(TimeoutError(f'{thread.name} still running after {timeout} s'))
    return results, errors
