"""The one process pool with bars (``uglspot frames --workers``, the demo's
side-by-side variants), with real spawned processes."""

from __future__ import annotations

import os
import time

import pytest

from uglspot.app.pool import run_in_processes


def count_to(n: int, pause: float, messages) -> tuple[int, int]:
    for _ in range(n):
        messages.put(n)
        time.sleep(pause)
    return n, os.getpid()


def sleep_then_fail(seconds: float, messages) -> None:
    messages.put(-1)
    time.sleep(seconds)
    raise ValueError(f"job broke after {seconds} s")


def test_each_result_comes_after_all_its_messages_and_names_its_job() -> None:
    seen: list[int] = []
    results: dict[int, tuple[int, int]] = {}

    def ended(index: int, value: tuple[int, int]) -> None:
        n, _ = value
        assert seen.count(n) == n, f"job {index} ended before its {n} messages were relayed"
        results[index] = value

    run_in_processes([(count_to, (3, 0.05)), (count_to, (5, 0.0)), (count_to, (1, 0.0))], 2, seen.append, ended)
    assert sorted(seen) == [1, 3, 3, 3, 5, 5, 5, 5, 5]
    assert {index: n for index, (n, _) in results.items()} == {0: 3, 1: 5, 2: 1}
    assert os.getpid() not in {pid for _, pid in results.values()}  # the jobs ran in other processes


def test_the_first_failing_job_ends_the_run_without_waiting_for_the_others() -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="job broke after 0.2 s"):
        run_in_processes([(count_to, (1, 120.0)), (sleep_then_fail, (0.2,))], 2, lambda message: None,
                         lambda index, value: pytest.fail("no job should end well"))
    assert time.monotonic() - started < 60  # the other job sleeps 120 s: it was stopped, not waited for


def test_jobs_that_a_result_returns_run_after_it_with_the_next_indices() -> None:
    ended_at: dict[int, float] = {}
    results: dict[int, int] = {}

    def ended(index: int, value: tuple[int, int]):
        n, _ = value
        ended_at[index], results[index] = time.monotonic(), n
        if index == 0:  # the slow first job's follow-ups: they may only start now
            return [(count_to, (10, 0.0)), (count_to, (11, 0.0))]
        if index == 2:
            return [(count_to, (12, 0.0))]
        return None

    run_in_processes([(count_to, (2, 0.3)), (count_to, (1, 0.0))], 2, lambda message: None, ended)
    # indices go on from the jobs given, in the order the follow-ups were returned
    assert results == {0: 2, 1: 1, 2: 10, 3: 11, 4: 12}
    assert ended_at[1] < ended_at[0] < min(ended_at[2], ended_at[3]) and ended_at[2] < ended_at[4]
