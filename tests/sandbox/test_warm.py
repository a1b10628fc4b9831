"""Warm sandboxes: solutions that follow each other in one sandbox share nothing, and a sandbox that
breaks mid-solution gives `error` (never `fail`), is replaced, and the retry passes."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from tracekit.sandbox import SandboxOptions, WarmSandbox
from tracekit.verify.code import CodeItem, CodeVerifier

from .conftest import strict_config, wait_gone

pytestmark = pytest.mark.slow

ONE = {"inputs": ["\n"], "outputs": ["clean\n"]}
SHM_KEY = 0x7A11C0DE


def litter(marker: str) -> str:
    """A solution that leaves everything it can behind, then passes its test."""
    return f"""
import collections, ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for p in ("/tmp/left.txt", "/tmp/.harness/planted", "/tmp/.harness/sol", "/dev/shm/left", "left-in-cwd"):
    with open(p, "w") as f:
        f.write("x")
os.makedirs("/tmp/deep/a/b")
open("/tmp/deep/a/b/f", "w").close()
os.chmod("/tmp/deep/a/b", 0)
os.chmod("/tmp/deep/a", 0)
os.symlink("/usr", "/tmp/link")
os.mkfifo("/tmp/fifo")
assert libc.shmget({SHM_KEY}, 4096, 0o1666) >= 0  # SysV shared memory (IPC_CREAT | 0666)
os.environ["TK_LEFT"] = "1"
os.putenv("TK_LEFT", "1")
collections.Counter = None
json.dumps = None
sys.modules["heapq"] = None
sys.setrecursionlimit(50)
if os.fork() == 0:  # a daemon that tries to outlive the solution
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
os.wait()
print("clean")
"""


CHECK = f"""
import collections, ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
bad = []
top = sorted(os.listdir("/tmp"))
if top != [".harness", os.path.basename(os.getcwd())]:
    bad.append("tmp:" + ",".join(top))
extra = sorted(set(os.listdir("/tmp/.harness")) - {{"in", "out", "err", "res"}})
if extra:
    bad.append("harness:" + ",".join(extra))
if os.listdir("."):
    bad.append("cwd")
if os.listdir("/dev/shm"):
    bad.append("shm:" + ",".join(os.listdir("/dev/shm")))
if libc.shmget({SHM_KEY}, 0, 0) >= 0:
    bad.append("sysv-shm")
if "TK_LEFT" in os.environ:
    bad.append("env")
if collections.Counter is None or json.dumps is None:
    bad.append("modules")
try:
    import heapq
    heapq.heappush
except Exception:
    bad.append("sys.modules")
if sys.getrecursionlimit() == 50:
    bad.append("recursionlimit")
for p in os.listdir("/proc"):  # /proc is the sandbox's: it shows the harness and any leftover
    try:
        if p.isdigit() and open("/proc/%s/comm" % p).read().strip() == "sleep":
            bad.append("processes")
    except OSError:
        pass
print(" ".join(bad) or "clean")
"""


def one_worker_verifier(**kw: object) -> CodeVerifier:
    return CodeVerifier(strict_config(workers=1, time_limit_s=3.0, **kw))


def test_a_solution_leaves_nothing_for_the_next_one_in_the_same_warm_sandbox() -> None:
    marker = f"{time.time_ns() % 10**9}.{os.getpid()}1"  # a unique sleep length
    with one_worker_verifier() as v:
        first = v.verify(CodeItem(code=litter(marker), tests=ONE))
        assert first.verdict == "pass", first.detail
        second = v.verify(CodeItem(code=CHECK, tests={"inputs": ["\n", "\n"], "outputs": ["clean\n"] * 2}))
        assert v.runner.pool.started == 1  # both ran in the same warm sandbox
    assert second.verdict == "pass", second.detail
    assert wait_gone(marker) == []


def test_the_check_itself_sees_litter_within_one_solution() -> None:
    # The same program as the next test of the littering solution: proves CHECK can see each kind of
    # leftover it looks for (tests of one solution share /tmp on purpose; the reset is per solution).
    code = (
        litter("30")
        .replace("    os._exit(0)\nos.wait()", "    os._exit(0)\nos.wait()\nimport time; time.sleep(0.3)")
        .replace('print("clean")', CHECK.replace("import collections", "import collections as _c"))
    )
    with one_worker_verifier() as v:
        got = v.verify(CodeItem(code=code, tests={"inputs": ["\n"], "outputs": ["x\n"]}))
    seen = got.detail["got"]
    kinds = ("tmp:", "harness:", "cwd", "shm:", "sysv-shm", "env", "modules", "sys.modules", "recursionlimit")
    for kind in kinds + ("processes",):
        assert kind in seen, seen


def test_process_runner_also_empties_the_work_dir_between_solutions() -> None:
    code_left = "open('left.txt', 'w').write('x')\nopen('../left2.txt', 'w').write('x')\nprint('clean')\n"
    code_check = "import os\nprint(' '.join(sorted(os.listdir('..'))) if os.listdir('.') or len(os.listdir('..')) > 2 else 'clean')\n"
    with one_worker_verifier(sandbox="process") as v:
        assert v.verify(CodeItem(code=code_left, tests=ONE)).verdict == "pass"
        second = v.verify(CodeItem(code=code_check, tests=ONE))
        assert v.runner.pool.started == 1
    assert second.verdict == "pass", second.detail


def test_warm_solutions_one_starts_a_sandbox_per_solution() -> None:
    options = SandboxOptions(disk_mb=16, warm_solutions=1)
    with one_worker_verifier(sandbox_options=options) as v:
        for _ in range(3):
            assert v.verify(CodeItem(code="print('clean')", tests=ONE)).verdict == "pass"
        assert v.runner.pool.started == 3


def _descendants(pid: int) -> list[int]:
    """Host PIDs below `pid`, parents before children."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (d / "stat").read_text()
                parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        kids = sorted(p for p, pp in parent.items() if pp in frontier)
        out += kids
        frontier = kids
    return out


def _kill_while_busy(v: CodeVerifier, pick: str, killed: list[int]) -> threading.Thread:
    """Once a sandbox is busy (and its test is running), SIGKILL it (`sandbox`: the whole bwrap) or
    only the solution harness (`solution`: the server's child) — once."""

    def target() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            busy = v.runner.pool.busy()
            if busy:
                sb: WarmSandbox = busy[0]
                time.sleep(0.8)  # the test (a 2 s sleep) is running now
                if pick == "sandbox":
                    os.killpg(sb.pid, signal.SIGKILL)
                    killed.append(sb.pid)
                else:
                    pythons = [
                        p for p in _descendants(sb.pid) if "python" in Path(f"/proc/{p}/comm").read_text()
                    ]
                    # server, then its solution child, then the test's intermediate/PID 1/test
                    os.kill(pythons[1], signal.SIGKILL)
                    killed.append(pythons[1])
                return
            time.sleep(0.01)

    t = threading.Thread(target=target)
    t.start()
    return t


SLOW_OK = "import time\ntime.sleep(2)\nprint('clean')\n"


@pytest.mark.parametrize("pick", ["sandbox", "solution"])
def test_a_harness_killed_mid_solution_is_error_and_replaced(pick: str) -> None:
    killed: list[int] = []
    with one_worker_verifier(max_retries=0) as v:
        t = _kill_while_busy(v, pick, killed)
        broken = v.verify(CodeItem(code=SLOW_OK, tests=ONE))
        t.join()
        assert killed
        assert broken.verdict == "error", broken.detail
        assert broken.detail["reason"] == "sandbox_error"
        assert broken.to_verify_result().verdict == "error"
        again = v.verify(CodeItem(code="print('clean')", tests=ONE))
        assert again.verdict == "pass", again.detail
        assert v.runner.pool.started == 2  # the broken sandbox was replaced


def test_a_harness_killed_mid_solution_is_retried_and_passes() -> None:
    killed: list[int] = []
    with one_worker_verifier(max_retries=1) as v:
        t = _kill_while_busy(v, "sandbox", killed)
        verdict = v.verify(CodeItem(code=SLOW_OK, tests=ONE))
        t.join()
    assert killed
    assert verdict.verdict == "pass", verdict.detail
    assert verdict.detail.get("retries") == 1


def test_many_solutions_on_all_workers_keep_their_verdicts() -> None:
    tag = uuid.uuid4().hex[:6]
    items = []
    for i in range(24):
        ok = i % 3 != 0
        code = f"import os\nopen('/tmp/{tag}_{i}', 'w').close()\nprint(int(input()) * {2 if ok else 3})\n"
        items.append(CodeItem(code=code, tests={"inputs": [f"{i}\n"], "outputs": [f"{2 * i}\n"]}))
    with CodeVerifier(strict_config(workers=2)) as v:
        got = [x.verdict for x in v.verify_many(items)]
        assert v.runner.pool.started <= 2
    assert got == ["fail" if i % 3 == 0 and i else "pass" for i in range(24)]


def test_a_lane_sandbox_killed_with_a_solution_queued_behind_retries_both() -> None:
    killed: list[int] = []
    items = [CodeItem(code=SLOW_OK, tests=ONE)] + [CodeItem(code="print('clean')", tests=ONE)] * 3
    with one_worker_verifier(max_retries=1) as v:
        t = _kill_while_busy(v, "sandbox", killed)
        got = v.verify_many(items)
        t.join()
        assert v.runner.pool.started >= 2
    assert killed
    assert [x.verdict for x in got] == ["pass"] * 4, [x.detail for x in got]
    assert got[0].detail.get("retries") == 1  # the one running when the sandbox died
    # the one queued behind it never started: run again in a fresh sandbox, no attempt used up
    assert "retries" not in got[1].detail


@pytest.mark.timeout(300)
def test_stopping_early_with_a_slow_test_queued_replaces_the_sandbox_not_the_verdicts() -> None:
    # test 0 fails fast; test 1 (already queued) sleeps: closing does not wait for it but kills the
    # sandbox, and the solution queued behind is retried in a fresh one
    # the queued test sleeps an hour: a close that waited for it would hang until the timeout above
    slow_second = "import time\ns = input()\nif s == 'slow':\n    time.sleep(3600)\nprint('wrong')\n"
    tests = {"inputs": ["fast\n", "slow\n"], "outputs": ["right\n", "right\n"]}
    items = [CodeItem(code=slow_second, tests=tests), CodeItem(code="print('clean')", tests=ONE)]
    # limits far above the test's timeout: only a close that does not wait ends in time
    with CodeVerifier(strict_config(workers=1, time_limit_s=600.0, stop_on_first_failure=True)) as v:
        got = v.verify_many(items)
    assert got[0].verdict == "fail" and got[0].detail["first_failing_test"] == 0
    assert got[0].tests_passed == 0
    assert got[1].verdict == "pass", got[1].detail  # and it did not wait for the queued slow test


def test_a_forked_process_starts_its_own_sandboxes_and_leaves_the_parents_alone() -> None:
    import warnings

    with one_worker_verifier() as v:
        assert v.verify(CodeItem(code="print('clean')", tests=ONE)).verdict == "pass"
        parent_idle = v.runner.pool._idle[:]  # the parent's warm sandbox
        assert len(parent_idle) == 1
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with the starter thread alive
            pid = os.fork()
        if pid == 0:  # child: must not talk to (or kill) the parent's sandbox
            code = 1
            try:
                ok = v.verify(CodeItem(code="print('clean')", tests=ONE)).verdict == "pass"
                mine = [sb for sb in v.runner.pool._idle if sb not in parent_idle]
                code = 0 if ok and len(mine) == 1 and v.runner.pool._idle == mine else 2
                v.close()
            finally:
                os.write(w, bytes([code]))
                os._exit(0)
        os.close(w)
        child_code = os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
        assert child_code == b"\x00"
        assert parent_idle[0].alive()
        assert v.verify(CodeItem(code="print('clean')", tests=ONE)).verdict == "pass"
        assert v.runner.pool.started == 1  # the parent still uses its first sandbox
