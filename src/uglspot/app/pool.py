"""Jobs in spawned worker processes, their progress drawn here: the one
process pool of ``uglspot frames --workers`` and of the demo's two variants
trained side by side.

Each job is called with one more argument, a queue it puts progress
messages on (a worker draws no bars of its own); this process hands each
message to ``on_message`` as it arrives (which moves the bars), and each
job's return value to ``on_result`` when the job ends, after all of that
job's messages. ``on_result`` may return more jobs, which join the pool's
queue then: a job that needs another's result (the demo spots a variant's
videos once its training has ended) starts only when that result is in.
The first job that raises ends the run: the other workers are stopped at
once rather than waited for, and its error is raised here.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

POLL_SECONDS = 0.2  # how often the queue is read while no job ends

Job = tuple[Callable[..., Any], tuple]


def run_in_processes(jobs: Sequence[Job], workers: int, on_message: Callable[[Any], None],
                     on_result: Callable[[int, Any], Sequence[Job] | None],
                     initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> None:
    """Run ``fn(*args, messages)`` for every ``(fn, args)`` of ``jobs`` in
    ``workers`` spawned processes (``initializer(*initargs)`` starts each);
    ``on_result(index, return value)`` as each ends, where the index counts
    ``jobs`` and then the jobs ``on_result`` returned, in the order given."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with context.Manager() as manager:  # outlives the pool: jobs put on its queue to the end
        messages = manager.Queue()
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs)
        try:
            pending = {pool.submit(fn, *args, messages): index for index, (fn, args) in enumerate(jobs)}
            submitted = len(pending)
            while pending:
                finished, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                _relay(messages, on_message)  # a job's last message is queued before the job ends
                for future in sorted(finished, key=pending.__getitem__):
                    index = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        raise error
                    for fn, args in on_result(index, future.result()) or ():
                        pending[pool.submit(fn, *args, messages)] = submitted
                        submitted += 1
        except BaseException:
            _stop(pool)  # an error or Ctrl-C: do not wait minutes for the other jobs
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _relay(messages: Any, on_message: Callable[[Any], None]) -> None:
    import queue

    while True:
        try:
            message = messages.get_nowait()
        except queue.Empty:
            return
        on_message(message)


def _stop(pool: Any) -> None:
    """End the pool's worker processes now (the executor has no public way)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
