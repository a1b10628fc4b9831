"""Process runner: rlimits only, for machines where bubblewrap cannot create namespaces."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from tracekit.sandbox.base import SandboxRunner, harness_source, unprivileged_ids
from tracekit.sandbox.limits import SandboxLimits


class ProcessRunner(SandboxRunner):
    """Harness as a plain host process with an empty environment and a fresh work directory.

    Tests still get rlimits, a wall limit and a process-group kill, but no namespaces: the network,
    the host file system (as the sandbox user sees it) and setsid'ed daemons are NOT contained.
    Chosen only by `sandbox: process`; the ledger records `code_process`.

    Example:
        >>> ProcessRunner().name
        'code_process'
    """

    name = "code_process"
    isolated = False

    def command(self, *, limits: SandboxLimits) -> tuple[list[str], Callable[[], None] | None]:
        work = tempfile.mkdtemp(prefix="tracekit-sbx-")
        ids = unprivileged_ids(self.options.run_as_user)
        if ids is not None:
            os.chown(work, *ids)
        os.chmod(work, 0o700)
        argv = [
            "env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            f"HOME={work}",
            f"TMPDIR={work}",
            "LANG=C.UTF-8",
        ]
        argv += ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", work]
        argv += [self.python, "-I", "-B", "-c", harness_source(), work, "--no-isolate"]
        return argv, lambda: shutil.rmtree(work, ignore_errors=True)
