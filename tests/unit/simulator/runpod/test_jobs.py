"""RunPod job lifecycles in the book: states, the status body's fields as they become known,
cancelling, expiry and the health counts. Times are plain numbers (seconds)."""

from __future__ import annotations

from worker.simulator.runpod.jobs import JobBook, JobStatus


def test_a_job_goes_from_queue_to_completed_with_its_times() -> None:
    book = JobBook()
    job = book.submit({"workflow": {}}, now=10.0, ttl=60)
    queued = job.status_json()
    taken = book.take_queued(worker=1)
    book.start(job, now=12.5)
    running = job.status_json()
    book.finish(job, JobStatus.COMPLETED, now=14.0, output={"images": []})

    assert queued == {"id": job.id, "status": "IN_QUEUE"}
    assert taken is job
    assert running == {
        "id": job.id,
        "status": "IN_PROGRESS",
        "delayTime": 2500,
        "workerId": "replica-1",
    }
    assert job.status_json() == {
        "id": job.id,
        "status": "COMPLETED",
        "delayTime": 2500,
        "executionTime": 1500,
        "workerId": "replica-1",
        "output": {"images": []},
    }


def test_jobs_are_taken_oldest_first_and_cancelled_ones_are_skipped() -> None:
    book = JobBook()
    first, second, third = (book.submit({}, now=float(t), ttl=60) for t in range(3))
    book.cancel(first, now=3.0)

    assert [book.take_queued(0), book.take_queued(0), book.take_queued(0)] == [
        second,
        third,
        None,
    ]


def test_a_cancelled_job_stays_cancelled_and_never_starts() -> None:
    book = JobBook()
    job = book.submit({}, now=0.0, ttl=60)
    book.take_queued(0)
    book.cancel(job, now=1.0)
    started = book.start(job, now=2.0)
    book.finish(job, JobStatus.COMPLETED, now=3.0, output={"images": []})

    assert not started
    assert job.status_json() == {"id": job.id, "status": "CANCELLED"}


def test_a_failed_job_carries_its_error() -> None:
    book = JobBook()
    job = book.submit({}, now=0.0, ttl=60)
    book.start(job, now=0.0)
    book.finish(job, JobStatus.FAILED, now=1.0, output={"details": ["x"]}, error="boom")

    assert job.status_json()["error"] == "boom"
    assert job.status_json()["output"] == {"details": ["x"]}


def test_an_ended_job_is_kept_for_its_ttl_and_then_forgotten() -> None:
    book = JobBook()
    job = book.submit({}, now=0.0, ttl=30)
    book.start(job, now=1.0)
    book.finish(job, JobStatus.COMPLETED, now=2.0, output={})

    assert book.get(job.id, now=32.0) is job
    assert book.get(job.id, now=32.5) is None


def test_health_counts_jobs_by_state() -> None:
    book = JobBook()
    _queued, running, done, failed, timed_out = (book.submit({}, 0.0, 60) for _ in range(5))
    for job in (running, done, failed, timed_out):
        book.start(job, now=1.0)
    book.finish(done, JobStatus.COMPLETED, now=2.0)
    book.finish(failed, JobStatus.FAILED, now=2.0, error="x")
    book.finish(timed_out, JobStatus.TIMED_OUT, now=2.0)

    assert book.counts() == {
        "completed": 1,
        "failed": 2,
        "inProgress": 1,
        "inQueue": 1,
        "retried": 0,
    }
