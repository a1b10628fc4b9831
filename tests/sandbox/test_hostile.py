"""Hostile programs in the bubblewrap sandbox, each guarantee checked from outside the sandbox."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from tracekit.verify.code import CodeItem, CodeVerifier

from .conftest import strict_config, wait_gone

pytestmark = pytest.mark.slow

ONE_TEST = {"inputs": ["\n"], "outputs": ["ok\n"]}


def run(verifier: CodeVerifier, code: str, tests: object = ONE_TEST, **kw: object):
    # no wall-clock bound is asserted: a verdict that never came would hang until pytest's timeout
    return verifier.verify(CodeItem(code=code, tests=tests, **kw))  # type: ignore[arg-type]


def test_fork_bomb_is_contained_and_leaves_nothing(bwrap_verifier: CodeVerifier) -> None:
    marker = f"tkfork{uuid.uuid4().hex[:8]}"
    code = f"""
import ctypes, os
libc = ctypes.CDLL(None)
while True:
    try:
        if os.fork() == 0:
            libc.prctl(15, b"{marker}", 0, 0, 0)
    except OSError:
        pass
"""
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail"
    assert verdict.detail["reason"] in ("timeout", "killed_by_signal", "runtime_error")
    assert wait_gone(marker) == []


def test_thread_bomb_hits_the_process_limit(bwrap_verifier: CodeVerifier) -> None:
    code = """
import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        n += 1
except RuntimeError:
    print("capped", n)
    raise
"""
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail"
    assert "capped" in verdict.detail.get("got", "") or verdict.detail["reason"] != "wrong_answer"


def test_memory_bomb_fails_within_the_limit(bwrap_verifier: CodeVerifier) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n"
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail"
    assert "MemoryError" in verdict.detail.get("stderr_tail", "")
    assert verdict.detail["peak_memory_kb"] < 256 * 1024


def test_output_flood_is_capped(bwrap_verifier: CodeVerifier) -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail"
    assert verdict.detail["reason"] in ("output_limit", "runtime_error")
    assert len(verdict.detail.get("got", "")) <= 210  # excerpt only; the host never holds the flood


def test_disk_fill_stays_in_a_small_private_tmpfs(tmp_path: Path) -> None:
    verifier = CodeVerifier(strict_config(stop_on_first_failure=True))
    marker = f"tkdisk{uuid.uuid4().hex[:8]}"
    code = f"""
import os
total = 0
for i in range(100000):
    try:
        with open("/tmp/{marker}_%d" % i, "wb") as f:
            f.write(b"x" * (512 << 10))
        total += 512 << 10
    except OSError:
        break
for name in os.listdir("/tmp"):
    if name.startswith("{marker}"):
        os.unlink("/tmp/" + name)
print(total)
"""
    verdict = run(verifier, code, tests={"inputs": ["\n"], "outputs": ["-1\n"]})
    written = int(verdict.detail["got"].strip())
    assert 0 < written <= 16 * 1024 * 1024
    assert not list(Path("/tmp").glob(f"{marker}*"))  # the host /tmp never saw a byte


def test_no_network_connect_or_dns() -> None:
    verifier = CodeVerifier(strict_config(time_limit_s=3.0))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                accepted.append(srv.accept())
            except OSError:
                continue

    t = threading.Thread(target=accept)
    t.start()
    code = f"""
import socket
res = []
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)):
    try:
        socket.create_connection((host, port), timeout=1).close()
        res.append("CONNECTED")
    except OSError:
        res.append("blocked")
try:
    socket.getaddrinfo("example.com", 80)
    res.append("RESOLVED")
except OSError:
    res.append("nodns")
print(" ".join(res))
"""
    verdict = run(verifier, code, tests={"inputs": ["\n"], "outputs": ["blocked blocked blocked nodns\n"]})
    t.join()
    srv.close()
    assert verdict.verdict == "pass", verdict.detail
    assert accepted == []


def test_cannot_write_or_delete_outside_the_work_dir(tmp_path: Path, bwrap_verifier: CodeVerifier) -> None:
    canary_dir = tmp_path / "canary"
    canary_dir.mkdir()
    canary = canary_dir / "keep.txt"
    canary.write_text("original")
    os.chmod(tmp_path, 0o777)
    os.chmod(canary_dir, 0o777)
    os.chmod(canary, 0o666)  # only the sandbox, not file permissions, may protect it
    repo_file = Path(__file__).resolve()
    targets = [
        str(canary),
        str(canary_dir / "new.txt"),
        "/usr/tk_evil",
        "/etc/tk_evil",
        "/tk_evil",
        str(repo_file),
    ]
    code = f"""
import os
res = []
for p in {targets!r}:
    try:
        with open(p, "a") as f:
            f.write("pwned")
        res.append("WROTE")
    except OSError:
        res.append("no")
for p in ({str(canary)!r}, "/usr/bin/python3"):
    try:
        os.unlink(p)
        res.append("DELETED")
    except OSError:
        res.append("no")
print(" ".join(res))
"""
    before = repo_file.read_bytes()
    verdict = run(bwrap_verifier, code, tests={"inputs": ["\n"], "outputs": ["no " * 7 + "no\n"]})
    assert verdict.verdict == "pass", verdict.detail
    assert canary.read_text() == "original"
    assert not (canary_dir / "new.txt").exists()
    assert repo_file.read_bytes() == before
    assert Path("/usr/bin/python3").exists()
    assert not Path("/usr/tk_evil").exists() and not Path("/etc/tk_evil").exists()


def test_secrets_in_env_and_home_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"hf_canary_{uuid.uuid4().hex}"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    home = Path.home()
    canary = home / f".tracekit_canary_{uuid.uuid4().hex[:8]}"
    try:
        canary.write_text(secret)
    except OSError:
        pytest.fail(f"cannot write a canary into the home folder {home}")
    try:
        verifier = CodeVerifier(strict_config())
        code = f"""
import os, glob
print(sorted(os.environ.items()))
for p in [{str(canary)!r}, os.path.expanduser("~/.cache/huggingface/token")] + glob.glob("/home/*/*") + glob.glob("/root/.*"):
    try:
        print(open(p).read())
    except OSError as e:
        print("denied", p)
"""
        verdict = run(verifier, code)
        assert verdict.verdict == "fail"
        got = verdict.detail.get("got", "") + verdict.detail.get("stderr_tail", "")
        assert "denied" in got or "[(" in got
        assert secret not in got
        # The full output, not only the excerpt: run the same program through a session.
        with verifier.runner.open_session(
            code=code,
            language="python",
            mode="stdio",
            limits=verifier.limits_for(CodeItem(code="", tests=[])),
        ) as s:
            raw = s.run_test({"i": 0, "stdin": ""})
        assert raw["outcome"] == "ok"
        assert secret not in raw["stdout"] + raw["stderr_tail"]
        assert "HF_TOKEN" not in raw["stdout"] and "OPENAI_API_KEY" not in raw["stdout"]
    finally:
        canary.unlink()


def test_killing_the_parent_does_not_break_the_sandbox(bwrap_verifier: CodeVerifier) -> None:
    code = """
import os, signal
for pid in [os.getppid(), 1, -1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
print("ok")
"""
    tests = {"inputs": ["\n", "\n", "\n"], "outputs": ["ok\n", "ok\n", "ok\n"]}
    verdict = run(bwrap_verifier, code, tests=tests)
    assert verdict.verdict == "pass", verdict.detail  # every test ran: the harness survived
    assert verdict.tests_passed == 3
    # kill(0) reaches only the test's own process group: the test fails, the sandbox does not break
    verdict = run(bwrap_verifier, "import os, signal\nos.kill(0, signal.SIGKILL)\n", tests=tests)
    assert verdict.verdict == "fail" and verdict.tests_total == 3
    # (as PID 1 of its namespace the test may even survive its own SIGKILL; then it printed nothing)
    assert verdict.detail["reason"] in ("killed_by_signal", "wrong_answer")


def test_double_forked_daemon_does_not_outlive_the_run(bwrap_verifier: CodeVerifier) -> None:
    marker = f"{time.time_ns() % 10**9}.{os.getpid()}"  # a unique sleep length
    code = f"""
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
os.wait()
print("ok")
"""
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "pass", verdict.detail
    assert wait_gone(marker) == []


def test_ignoring_sigterm_and_spinning_is_killed(bwrap_verifier: CodeVerifier) -> None:
    code = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail" and verdict.detail["reason"] == "timeout"


def test_sleeping_past_the_limit_is_a_timeout_even_after_printing(bwrap_verifier: CodeVerifier) -> None:
    code = "import time\nprint('ok', flush=True)\ntime.sleep(600)\n"
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail" and verdict.detail["reason"] == "timeout"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("print('ok')\nraise SystemExit(3)\n", "runtime_error"),
        ("import os\nprint('ok', flush=True)\nos.kill(os.getpid(), 11)\n", "killed_by_signal"),
        ("print('ok')\nraise ValueError('late')\n", "runtime_error"),
    ],
)
def test_right_output_with_a_bad_exit_fails(bwrap_verifier: CodeVerifier, code: str, reason: str) -> None:
    verdict = run(bwrap_verifier, code)
    assert verdict.verdict == "fail"
    assert verdict.detail["reason"] == reason


def test_exit_before_the_asserts_fails(bwrap_verifier: CodeVerifier) -> None:
    code = "import sys\ndef add(a, b):\n    return a - b\nsys.exit(0)\n"
    tests = {"test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"}
    verdict = run(bwrap_verifier, code, tests=tests)
    assert verdict.verdict == "fail" and verdict.detail["reason"] == "no_result"


def test_tests_of_one_solution_and_of_different_solutions_share_no_files(
    bwrap_verifier: CodeVerifier,
) -> None:
    code = """
import os
seen = os.path.exists("/tmp/tk_state")
open("/tmp/tk_state", "w").write("x")
print("fresh" if not seen else "SEEN")
"""
    tests = {"inputs": ["\n", "\n"], "outputs": ["fresh\n", "fresh\n"]}
    first = bwrap_verifier.verify(CodeItem(code=code, tests=tests))
    # within one solution /tmp is shared on purpose (one sandbox per solution); across solutions never
    assert first.tests_passed >= 1
    second = bwrap_verifier.verify(CodeItem(code=code, tests={"inputs": ["\n"], "outputs": ["fresh\n"]}))
    assert second.verdict == "pass"
