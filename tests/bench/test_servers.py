"""bench/: a server is stopped only when every process of it has exited, lingering workers included."""

from __future__ import annotations

import subprocess
import time

from bench.suite.servers import server_processes, stop

# A leader that dies at SIGTERM, and a worker in its process group that ignores SIGTERM and lingers a
# moment after it, as LitServe's workers do.
LINGERING = "sh -c 'trap \"\" TERM; sleep 1' & exec sleep 60"


def test_stop_waits_for_every_process_of_the_group() -> None:
    leader = subprocess.Popen(["sh", "-c", LINGERING], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(server_processes(leader.pid)) < 2 and time.monotonic() < deadline:  # the worker has started
            time.sleep(0.01)
        stopped = stop(leader.pid)
        assert server_processes(leader.pid) == set() and stopped.killed == ()
        assert leader.poll() is not None  # reaped, not left a zombie
    finally:
        if leader.poll() is None:
            leader.kill()


def test_stop_kills_what_survives_the_timeout() -> None:
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & wait"], start_new_session=True)
    try:
        stopped = stop(stubborn.pid, grace=0.5)
        assert server_processes(stubborn.pid) == set()
        assert len(stopped.killed) == 2 and "2 SIGKILLed" in str(stopped)  # the shell and its sleep
    finally:
        if stubborn.poll() is None:
            stubborn.kill()


def test_a_server_already_gone_stops_at_once() -> None:
    gone = subprocess.Popen(["true"], start_new_session=True)
    gone.wait()
    assert stop(gone.pid).seconds < 1


def test_the_group_is_stopped_even_when_its_leader_has_already_exited() -> None:
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & exit 0"], start_new_session=True)
    leader.wait()  # reaped: only the orphaned worker is left in its group
    deadline = time.monotonic() + 10
    while not server_processes(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server_processes(leader.pid)
    assert stop(leader.pid).killed == ()  # SIGTERM reached it through the group
    assert server_processes(leader.pid) == set()
