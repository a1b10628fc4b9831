"""Every sandbox process a verifier kills is reaped: neither bubblewrap process is left a zombie, also when
a probe fills the sandbox's disk (which left a zombie `bwrap` behind in 1 run of 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracekit.sandbox import warm
from tracekit.verify.code import CodeItem, CodeVerifier

from .conftest import strict_config

pytestmark = pytest.mark.slow

DISK_FILL = """
import os
total = 0
for i in range(100000):
    try:
        with open("/tmp/fill_%d" % i, "wb") as f:
            f.write(b"x" * (512 << 10))
        total += 512 << 10
    except OSError:
        break
for name in os.listdir("/tmp"):
    if name.startswith("fill_"):
        os.unlink("/tmp/" + name)
print(total)
"""
HANGS = "import time\ntime.sleep(3600)\n"


def state(pid: int) -> tuple[str, str] | None:
    """(command name, state letter) of a process, None once it is gone (reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()[0]


@pytest.fixture
def killed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[warm.WarmSandbox, list[int]]]:
    """Each sandbox killed during the test, with the children its bubblewrap had just before."""
    seen: list[tuple[warm.WarmSandbox, list[int]]] = []
    kill = warm.WarmSandbox.kill

    def watched(self: warm.WarmSandbox) -> None:
        seen.append((self, warm._children(self.proc.pid)))
        kill(self)

    monkeypatch.setattr(warm.WarmSandbox, "kill", watched)
    return seen


@pytest.mark.parametrize("probe", range(3))
def test_a_sandbox_killed_after_filling_its_disk_is_reaped(killed, probe: int) -> None:
    with CodeVerifier(strict_config(stop_on_first_failure=True)) as v:
        # a wrong answer breaks nothing; a hanging one is killed at the time limit with its sandbox
        filled = v.verify(CodeItem(code=DISK_FILL, tests={"inputs": ["\n"], "outputs": ["-1\n"]}))
        hung = v.verify(CodeItem(code=HANGS, tests={"inputs": ["\n"], "outputs": ["x\n"]}))
    assert filled.verdict == "fail" and 0 < int(filled.detail["got"].strip()) <= 16 << 20, filled.detail
    assert hung.verdict == "fail" and hung.detail["reason"] == "timeout"
    assert killed, "closing the verifier kills its sandboxes"
    for sb, inner in killed:
        assert sb.proc.returncode is not None  # the outer bubblewrap was reaped by us
        assert inner, "bubblewrap had started its inner process"
        for pid in inner:
            # the inner bubblewrap is gone, not a zombie handed to the host's pid 1
            assert state(pid) is None or state(pid) != ("bwrap", "Z"), state(pid)
