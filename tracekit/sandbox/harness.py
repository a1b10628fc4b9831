"""The program that runs inside the sandbox: a warm server, a fresh child per solution, a fresh
process per test.

Standard library only: it runs under the sandbox's interpreter (e.g. /usr/bin/python3), not the
tracekit venv. It never sees expected outputs: the host compares, so a solution cannot read answers
from memory.

Layers (each a fork of the one above, so nothing is imported or started twice):
    server    started once per sandbox (one per host worker); pre-imports common modules, never reads
              a request and never runs solution code. It keeps one solution child running and the
              next one prepared; a child that exits other than cleanly is reported as a harness error
              and the server exits, so the host replaces the whole sandbox.
    solution  prepared ahead: enters a new user + PID + IPC namespace and forks PID 1 there, which
              waits for its turn (a token the previous solution writes when all its processes are
              gone), empties the writable places (work dir, /dev/shm), then reads this solution's
              requests from the host (unbuffered: the next solution's bytes stay in the pipe),
              compiles it and answers its tests until "done".
    test      per test, PID 1 forks the test process (Python: forked from the warm interpreter, no
              interpreter start; C++: exec of the compiled binary) with its own session, rlimits, no
              capabilities, stdio redirected to files. After it exits (or is killed at the wall limit)
              PID 1 kills and reaps every process left in the namespace (kill(-1), daemons included).
              The test cannot signal, trace or read the harness, and nothing of it reaches the next
              solution.

Protocol (host -> harness: 4-byte big-endian length + marshal blob; harness -> host: one JSON line):
    host -> {"language", "code", "mode": "stdio|call|assert", "fn_name", "entry_point", "limits"}
    harness -> {"ready": true} | {"ready": false, "compile_error": "..."}
    host -> {"i": k, "stdin": "..."} | {"i": k, "args": [...]} | {"i": k, "assert": "..."}
    harness -> {"i": k, "outcome": "ok|timeout|signal|exit|output_limit|not_run", ...}
               (tests may be queued behind the setup; after a compile error they are "not_run")
    host -> {"done": true}            (the next solution's setup may follow at once)
    harness -> {"outcome": "harness_error", "detail": "..."} whenever the harness itself broke.
"""

import contextlib
import ctypes
import marshal
import os
import resource
import select
import signal
import sys
import time
from _json import encode_basestring_ascii as _json_str  # C helper: no `re` import (startup cost)

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWIPC = 0x08000000  # SysV IPC objects die with the test, never reach the next solution
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
# argv: WORK [--no-isolate] [more dirs to empty]
WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp"  # the sandbox's private writable directory
ISOLATE = "--no-isolate" not in sys.argv[2:]  # nested namespaces per solution (process mode: no)
# Every place a test can write to; emptied before each solution.
WIPE_DIRS = [WORK] + [a for a in sys.argv[2:] if not a.startswith("--")]
EXIT_HOST_GONE = 3  # a solution child saw EOF from the host: the server stops quietly
EXIT_NO_TURN = 4  # the solution before this one broke: this one never started
# Imported once by the server so that tests (forked from it) do not pay for them. Forked copies are
# private: a test that changes one of these modules changes only its own process.
PRELOAD = (
    "bisect", "collections", "functools", "heapq", "itertools", "math", "operator", "re", "string",
    "typing",
)  # fmt: skip
RUN_DIR = WORK + "/.harness"  # harness files (stdin/stdout/stderr of each test, binaries)
STDERR_TAIL = 2000

_libc = ctypes.CDLL(None, use_errno=True)


_HOST_OUT = sys.stdout  # the pipe to the host; test processes close it
_HOST_IN_FD = 0  # framed marshal requests from the host (trusted data), read unbuffered


def _dumps(v):
    """JSON text of JSON-like values (what `json.dumps` gives), without importing json."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
        return float.__repr__(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(_json_str(str(k)) + ": " + _dumps(x) for k, x in v.items()) + "}"
    raise TypeError(f"return value of type {type(v).__name__} is not JSON-like")


def _print_exc():
    sys.__excepthook__(*sys.exc_info())  # C-level traceback printing: no `traceback` import


def _reply(obj):
    _HOST_OUT.write(_dumps(obj) + "\n")
    _HOST_OUT.flush()


def _read_tail(path, limit):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _enter_namespaces():
    """New user + PID namespace for the next child; False when the kernel refuses (process mode)."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC) != 0:
        return False
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # /proc/self/*_map is writable only when dumpable
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        return False
    finally:
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    return True


def _drop_capabilities():
    # The nested user namespace gave this process full capabilities inside it; drop them all.
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    hdr = Header(0x20080522, 0)
    data = (Data * 2)()
    _libc.capset(ctypes.byref(hdr), ctypes.byref(data))
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _set_limits(lim, *, cpu_s, memory_mb):
    def setl(res, soft, hard=None):
        hard = soft if hard is None else hard
        try:
            _, cur_hard = resource.getrlimit(res)
            if cur_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, cur_hard), min(hard, cur_hard)
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            pass

    cpu = max(1, int(cpu_s + 0.999))
    setl(resource.RLIMIT_CPU, cpu, cpu + 1)
    setl(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    setl(resource.RLIMIT_STACK, min(memory_mb, 256) * 1024 * 1024)
    setl(resource.RLIMIT_NPROC, lim["max_processes"])
    setl(resource.RLIMIT_FSIZE, lim["max_output_bytes"])
    setl(resource.RLIMIT_NOFILE, lim["max_open_files"])
    setl(resource.RLIMIT_CORE, 0)


def _redirect(stdin_path, stdout_path, stderr_path, keep_fd=-1):
    fin = os.open(stdin_path, os.O_RDONLY)
    fout = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    ferr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for src, dst in ((fin, 0), (fout, 1), (ferr, 2)):
        os.dup2(src, dst)
        os.close(src)
    # Close every other descriptor (the host pipes above all) except the result file.
    for fd in os.listdir("/proc/self/fd"):
        n = int(fd)
        if n > 2 and n != keep_fd:
            with contextlib.suppress(OSError):
                os.close(n)


def _run_python_test(state, req, res_fd, nonce):
    """Body of the test process (Python): run the solution in a fresh module, then the test."""
    import atexit
    import builtins
    import types

    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr  # type: ignore[misc]
    sys.argv = ["solution.py"]
    rnd = sys.modules.get("random")
    if rnd is not None:  # never preloaded; reseed anyway so tests never share a random stream
        rnd.seed()
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    module.__dict__["__file__"] = "solution.py"
    sys.modules["__main__"] = module
    g = module.__dict__
    code = 0
    try:
        exec(state["code_obj"], g)
        mode = state["mode"]
        if mode == "call":
            fn_name = state["fn_name"]
            sol = g.get("Solution")
            if sol is not None and hasattr(sol, fn_name):
                fn = getattr(sol(), fn_name)
            elif fn_name in g:
                fn = g[fn_name]
            else:
                raise NameError(f"function {fn_name!r} is not defined by the solution")
            os.write(res_fd, (nonce + "\n" + _dumps(fn(*req["args"]))).encode())
        elif mode == "assert":
            exec(compile(req["assert"], "test.py", "exec"), g)
            entry = state.get("entry_point")
            if entry and callable(g.get("check")) and "def check(" in req["assert"]:
                g["check"](g[entry])
            os.write(res_fd, (nonce + "\nok").encode())
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        _print_exc()
        code = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        _print_exc()
        code = code or 1
    try:
        sys.stdout.flush()
    except BaseException:
        code = code or 120
    with contextlib.suppress(BaseException):
        sys.stderr.flush()
    os._exit(code)


KEEP = {"sol", "sol.cpp"}


def _reset_work_dir():
    """Before each test: remove whatever earlier tests left (files, full disk, odd permissions)."""
    with contextlib.suppress(OSError):
        if os.path.islink(RUN_DIR) or not os.path.isdir(RUN_DIR):
            with contextlib.suppress(OSError):
                os.unlink(RUN_DIR)
            os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        os.chmod(WORK, 0o700)
        os.chmod(RUN_DIR, 0o700)
    for name in os.listdir(WORK):
        path = os.path.join(WORK, name)
        if path != RUN_DIR:
            _remove(path)
    for name in os.listdir(RUN_DIR):
        if name not in KEEP:
            _remove(os.path.join(RUN_DIR, name))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, _ in os.walk(path):
            for d in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, d), 0o700)
        _rmtree(path)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _kill_leftovers(pid, *, isolated):
    """After a test: kill and reap every process it left behind (daemons, bombs, sleepers).

    Isolated, this process is PID 1 of the solution's PID namespace, so kill(-1) reaches every other
    process there (nested namespaces included) and every orphan is reparented here: kill again and
    reap until no child is left. Without namespaces (process mode) only the test's process group."""
    if not isolated:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        return
    while True:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _exec_test(state, req, lim, tdir, nonce, *, isolated):
    """The test process: own session, fresh cwd, redirected stdio, rlimits, then the solution."""
    try:
        RUN = RUN_DIR
        # Own session and process group: kill(0, ...) reaches only the test's processes.
        os.setsid()
        os.chdir(tdir)
        res_fd = os.open(f"{RUN}/res", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        _redirect(f"{RUN}/in", f"{RUN}/out", f"{RUN}/err", keep_fd=res_fd)
        if isolated:
            _drop_capabilities()
        _set_limits(lim, cpu_s=float(lim["time_limit_s"]), memory_mb=int(lim["memory_mb"]))
        if state["language"] == "python":
            _run_python_test(state, req, res_fd, nonce)
        else:
            os.close(res_fd)
            for s in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(s, signal.SIG_DFL)
            env = {"PATH": "/usr/bin:/bin", "HOME": tdir, "LANG": "C.UTF-8"}
            os.execve(state["binary"], [state["binary"]], env)
    except BaseException:
        _print_exc()
    os._exit(127)


def _rmtree(path):
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                _rmtree(entry.path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _run_one(state, req, lim):
    """Run one test in a fresh child; return the raw outcome (no comparison here)."""
    k = req["i"]
    _reset_work_dir()
    tdir = f"{WORK}/t{k}"
    os.makedirs(tdir, mode=0o700)
    stdin_path, out_path, err_path = (f"{RUN_DIR}/in", f"{RUN_DIR}/out", f"{RUN_DIR}/err")
    res_path = f"{RUN_DIR}/res"
    with open(stdin_path, "w", encoding="utf-8") as f:
        f.write(req.get("stdin") or "")
    for p in (out_path, err_path, res_path):
        if os.path.exists(p):
            os.unlink(p)
    nonce = os.urandom(16).hex()
    time_limit = float(lim["time_limit_s"])
    wall_limit = time_limit * float(lim["wall_factor"]) + 1.0
    isolated = state["isolated"]
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _exec_test(state, req, lim, tdir, nonce, isolated=isolated)
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        timed_out = not poller.poll(wall_limit * 1000)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status, ru = os.wait4(pid, 0)
    finally:
        os.close(pidfd)
    wall = time.monotonic() - t0
    _kill_leftovers(pid, isolated=isolated)
    info = {
        "timed_out": timed_out,
        "status": status,
        "wall_s": round(wall, 4),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
        "maxrss_kb": ru.ru_maxrss,
        "isolated": isolated,
    }
    status = info.pop("status")
    out = {"i": k, **info}
    max_out = int(lim["max_output_bytes"])
    try:
        out_size = os.path.getsize(out_path)
    except OSError:
        out_size = 0
    try:
        with open(out_path, "rb") as f:
            out["stdout"] = f.read(max_out).decode("utf-8", "replace")
    except OSError:
        out["stdout"] = ""
    out["stderr_tail"] = _read_tail(err_path, STDERR_TAIL)
    result = None
    if state["mode"] in ("call", "assert"):
        try:
            with open(res_path, encoding="utf-8") as f:
                head, _, body = f.read().partition("\n")
            if head == nonce:
                result = body
        except OSError:
            pass
    out["result"] = result
    if info["timed_out"] or info["cpu_s"] > time_limit:
        out["outcome"] = "timeout"
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        out["signal"] = sig
        # SIGXCPU / SIGKILL at the CPU rlimit (integer seconds, so cpu_s may read just under it)
        cpu_kill = sig == signal.SIGKILL and info["cpu_s"] >= int(time_limit + 0.999) - 0.05
        if sig == signal.SIGXCPU or cpu_kill:
            out["outcome"] = "timeout"
        elif sig == signal.SIGXFSZ:
            out["outcome"] = "output_limit"
        else:
            out["outcome"] = "signal"
    elif out_size >= max_out or len(out["stderr_tail"]) >= max_out:
        out["outcome"] = "output_limit"
    else:
        out["exit_code"] = os.WEXITSTATUS(status)
        out["outcome"] = "ok" if out["exit_code"] == 0 else "exit"
    return out


def _compile(setup, lim):
    """Prepare the solution once: Python bytecode, or a g++ binary built in this sandbox."""
    state = {
        "language": setup.get("language", "python"),
        "mode": setup.get("mode", "stdio"),
        "fn_name": setup.get("fn_name"),
        "entry_point": setup.get("entry_point"),
    }
    if state["language"] == "python":
        try:
            state["code_obj"] = compile(setup["code"], "solution.py", "exec")
        except (SyntaxError, ValueError) as e:
            return state, f"{type(e).__name__}: {e}"
        return state, None
    if state["language"] == "cpp":
        src, binary = f"{RUN_DIR}/sol.cpp", f"{RUN_DIR}/sol"
        with open(src, "w", encoding="utf-8") as f:
            f.write(setup["code"])
        import subprocess

        cmd = ["g++", "-O2", "-std=gnu++17", "-pipe", "-o", binary, src]

        def limits():
            os.setpgid(0, 0)
            resource.setrlimit(resource.RLIMIT_AS, (lim["compile_memory_mb"] << 20,) * 2)
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20,) * 2)

        try:
            proc = subprocess.run(
                cmd, capture_output=True, timeout=lim["compile_time_limit_s"], preexec_fn=limits, cwd=RUN_DIR
            )
        except subprocess.TimeoutExpired:
            return state, "compile timeout"
        if proc.returncode != 0:
            return state, proc.stderr.decode("utf-8", "replace")[-STDERR_TAIL:]
        state["binary"] = binary
        return state, None
    return state, f"unsupported language {state['language']!r}"


def _read_exact(n):
    """Exactly n bytes from the host pipe, or None at EOF. os.read, not a buffered reader: bytes past
    this solution's "done" belong to the next solution's child."""
    parts = []
    while n > 0:
        chunk = os.read(_HOST_IN_FD, n)
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _read_request():
    """One framed request: 4-byte big-endian length, then a marshal blob. None at EOF."""
    head = _read_exact(4)
    if head is None:
        return None
    blob = _read_exact(int.from_bytes(head, "big"))
    return None if blob is None else marshal.loads(blob)


def _serve_tests(state, err, lim):
    """Answer test requests until "done" (0) or EOF from the host (EXIT_HOST_GONE)."""
    while True:
        req = _read_request()
        if req is None:
            return EXIT_HOST_GONE
        if req.get("done"):
            return 0
        if err is not None:
            _reply({"i": req.get("i"), "outcome": "not_run", "detail": "compile error"})
            continue
        try:
            _reply(_run_one(state, req, lim))
        except Exception as e:
            _reply({"i": req.get("i"), "outcome": "harness_error", "detail": f"{type(e).__name__}: {e}"})


def _solution_main(go_fd, done_fd):
    """One solution, forked by the server *before* the previous solution has finished, so that
    entering the namespaces overlaps with the previous solution's tests. Returns the exit code.

    With namespaces this process enters a new user + PID + IPC namespace and forks PID 1 there,
    which runs the solution (it dies with this process: PDEATHSIG, and the namespace with it)."""
    isolated = ISOLATE and _enter_namespaces()
    if not isolated:
        return _solution(go_fd, done_fd, isolated=False)
    pid1 = os.fork()
    if pid1 == 0:
        code = 70
        try:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            code = _solution(go_fd, done_fd, isolated=True)
        except BaseException:
            _print_exc()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
        os._exit(code)
    os.close(go_fd)
    os.close(done_fd)
    _, status = os.waitpid(pid1, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, EXIT_HOST_GONE, EXIT_NO_TURN):
        return os.WEXITSTATUS(status)
    return 70


def _solution(go_fd, done_fd, *, isolated):
    """Wait for the turn (the previous solution wrote "g" when done; EOF: it broke), empty the
    writable dirs, then setup, tests, until "done"; then hand the turn on."""
    go = os.read(go_fd, 1)
    os.close(go_fd)
    if go != b"g":
        return EXIT_NO_TURN
    if not _wipe():
        _reply({"outcome": "harness_error", "detail": "could not empty the work dir"})
        return 70
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    setup = _read_request()
    if setup is None:
        return EXIT_HOST_GONE
    lim = setup["limits"]
    state, err = _compile(setup, lim)
    if err is not None:
        _reply({"ready": False, "compile_error": err})
    else:
        _reply({"ready": True})
    state["isolated"] = isolated
    code = _serve_tests(state, err, lim)
    if code == 0:
        os.write(done_fd, b"g")  # every process of this solution is gone: the next may start
    os.close(done_fd)
    return code


def _wipe():
    """Empty every writable place; True when they are all empty afterwards."""
    clean = True
    for d in WIPE_DIRS:
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
        try:
            names = os.listdir(d)
        except OSError:
            continue  # e.g. no /dev/shm: nothing to carry state in
        for name in names:
            _remove(os.path.join(d, name))
        try:
            clean = clean and not os.listdir(d)
        except OSError:
            clean = False
    return clean


def _preload():
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            __import__(name)


def main():
    # Not dumpable: a test process (same uid) cannot read or write this process's memory via /proc.
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with whoever started it
    _preload()
    go_r, go_w = os.pipe()
    os.write(go_w, b"g")  # the first solution may start at once
    os.close(go_w)
    running = []  # at most two solution children: the one running and the one prepared after it
    while True:
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(done_r)
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                code = _solution_main(go_r, done_w)
            except BaseException:
                _print_exc()
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
            os._exit(code)
        os.close(go_r)
        os.close(done_w)
        go_r = done_r
        running.append(pid)
        if len(running) < 2:
            continue
        _, status = os.waitpid(running.pop(0), 0)
        if status == 0:
            continue
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) in (EXIT_HOST_GONE, EXIT_NO_TURN):
            return
        _reply({"outcome": "harness_error", "detail": f"solution harness died (wait status {status})"})
        return


if __name__ == "__main__":
    main()
