"""The hostile-program suite again, run by an ordinary (non-root) user: bwrap then runs unprivileged
and the sandbox runs as that user, not as the `nobody` tracekit switches to when started as root."""

from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
USER = "tracekit-sbx"
SYSTEM_PYTHON = "/usr/bin/python3"


def ordinary_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
        return pwd.getpwnam(USER)


@pytest.mark.skipif(os.environ.get("TRACEKIT_INNER_USER_RUN") == "1", reason="already the inner run")
def test_hostile_suite_passes_as_an_ordinary_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("this run is already unprivileged: tests/sandbox ran as an ordinary user")
    for tool in ("setpriv", "useradd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: scripts/setup.sh installs it")
    user = ordinary_user()
    # tracekit's venv may live where the user cannot read (e.g. /root/.pyenv); the system Python of the
    # same minor version can import the venv's packages instead.
    py = SYSTEM_PYTHON
    probe = subprocess.run(
        [py, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    if probe.stdout.strip() != str(tuple(sys.version_info[:2])):
        pytest.fail(f"{py} is not Python {sys.version_info[:2]}; cannot run the suite as {USER}")
    paths = [str(REPO), *site.getsitepackages()]
    base = tempfile.mkdtemp(prefix="tracekit-user-run-")  # pytest's own tmp dirs are root-only
    os.chown(base, user.pw_uid, user.pw_gid)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": user.pw_dir,
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TRACEKIT_INNER_USER_RUN": "1",
        "LANG": "C.UTF-8",
    }
    cmd = [
        "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--inh-caps=-all",
        py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", f"{base}/inner",
        "tests/sandbox/test_hostile.py",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_sandbox_user_is_unprivileged() -> None:
    from tracekit.verify.code import CodeItem, CodeVerifier, CodeVerifyConfig

    code = "import os\nprint(os.getuid() != 0 and os.geteuid() != 0)\n"
    v = CodeVerifier(CodeVerifyConfig()).verify(CodeItem(code=code, tests=[{"input": "", "output": "True"}]))
    assert v.verdict == "pass", v.detail
