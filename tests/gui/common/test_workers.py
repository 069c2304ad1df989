"""JobList: jobs run off the GUI thread, one at a time, and fail readably."""

from __future__ import annotations

import threading
import time

from alchemy_engine.errors import AlchemyError
from alchemy_engine.jobs import Progress
from alchemy_gui.common.job_list import JobList


def test_job_runs_off_the_gui_thread_and_reports_progress(qtbot):
    runner = JobList()
    seen_threads = []

    def job(request, progress, cancel):
        seen_threads.append(threading.current_thread())
        for step in range(3):
            progress(Progress("work", step + 1, 3))
        return request * 2

    worker = runner.submit(job, 21)
    events = []
    worker.progress.connect(events.append)
    with qtbot.waitSignal(worker.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args == [42]
    assert [e.step for e in events] == [1, 2, 3]
    assert seen_threads[0] is not threading.main_thread()
    qtbot.waitUntil(lambda: not runner.busy)


def test_user_error_has_no_traceback_and_crash_has_one(qtbot):
    runner = JobList()

    def user_error(request, progress, cancel):
        raise AlchemyError("Add at least one photo.")

    def crash(request, progress, cancel):
        raise ZeroDivisionError("boom")

    first = runner.submit(user_error, None, "first")
    second = runner.submit(crash, None, "second")
    failures = []
    first.failed.connect(failures.append)
    second.failed.connect(failures.append)
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=5000)
    assert failures[0].message == "Add at least one photo." and failures[0].detail == ""
    assert "boom" in failures[1].message and "ZeroDivisionError" in failures[1].detail


def test_jobs_run_one_at_a_time_and_cancel_is_honoured(qtbot):
    runner = JobList()
    running = []
    overlap = []

    def slow(request, progress, cancel):
        running.append(request)
        overlap.append(len(running))
        try:
            for _ in range(200):
                cancel.raise_if_cancelled()
                time.sleep(0.005)
        finally:
            running.remove(request)
        return request

    workers = [runner.submit(slow, i) for i in range(3)]
    results, failures = [], []
    for w in workers:
        w.succeeded.connect(results.append)
        w.failed.connect(failures.append)
    qtbot.waitUntil(lambda: bool(running), timeout=5000)  # the first runs; the others wait their turn
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert max(overlap) == 1
    assert results == []
    assert len(failures) == 3 and all(f.cancelled for f in failures)
