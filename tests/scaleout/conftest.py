"""Fixtures for the scale-out tests: a real one-node Slurm cluster (scripts/slurm/up.sh) and a real Ray
head node, each started once per test session and always torn down; recipes that point at them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, read_dataset, read_ledger, run_cli

PIPELINES = REPO / "pipelines"


def _absolute_paths(node: object) -> None:
    """Every `path:` of a recipe (sources, benchmarks, ...) made absolute, relative to pipelines/."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if key == "path" and isinstance(value, str) and not Path(value).is_absolute():
            node[key] = str((PIPELINES / value).resolve())  # type: ignore[index]
        else:
            _absolute_paths(value)


def variant_recipe(
    name: str, dest: Path, *, out: Path, resample: bool = False, **executor: object
) -> Path:
    """pipelines/NAME.yaml copied to dest with `output: out`, absolute source paths and executor overrides.

    `resample=True`: the recipe samples too little at first and fills its math quota with
    `mix: {fill: resample}`: 10 prompts, one generation each, for a quota of 30 correct traces, so
    the build runs two rounds (20, then 40 prompts). Decontamination is left out (one job less per round).
    """
    recipe = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text())
    recipe["output"] = str(out)
    _absolute_paths(recipe)
    recipe["executor"].update(executor)
    if resample:
        recipe["sources"][0]["limit"] = 10
        recipe["teacher"]["max_generations"] = 1
        recipe.pop("decontaminate")
        recipe["mix"].update(fill="resample", max_rounds=3)
        recipe["mix"]["buckets"][0]["count"] = 30
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


RESAMPLE_ROUNDS = [20, 40]  # toy-math's limit in each round of the resample variant


@pytest.fixture(scope="session")
def local_resample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The resample variant of the quickstart built locally (the reference for the clusters)."""
    tmp = tmp_path_factory.mktemp("local-resample")
    recipe = variant_recipe("quickstart", tmp / "recipe", out=tmp / "out", resample=True)
    r = run_cli("build", str(recipe), cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp / "out"


def assert_same_resampled_build(out: Path, local: Path) -> None:
    """`out` ran the local build's resample rounds and holds its rows, row for row."""
    from tracekit.engine.layout import BuildLayout

    rounds = json.loads(BuildLayout(out).resample_log.read_text())
    assert [r["limits"]["toy-math"] for r in rounds] == RESAMPLE_ROUNDS
    assert rounds == json.loads(BuildLayout(local).resample_log.read_text())
    stages = [s["name"] for s in json.loads(BuildLayout(out).stages_file.read_text())["stages"]]
    assert stages == [
        "sample", "dedup", "mix", "sample-r1", "dedup-r1", "mix-r1", "sample-r2", "dedup-r2", "mix-r2", "finalize"
    ]
    assert read_ledger(out) == read_ledger(local)
    dataset = read_dataset(out)
    assert dataset == read_dataset(local)
    assert sum(1 for r in dataset if r["bucket"] == "math") == 30  # the quota is met, not the first pass's share


@pytest.fixture(scope="session")
def local_quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart recipe built with the local executor (the reference the clusters must equal)."""
    tmp = tmp_path_factory.mktemp("local")
    recipe = variant_recipe("quickstart", tmp / "recipe", out=tmp / "out")
    r = run_cli("build", str(recipe), cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp / "out"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A one-node Slurm cluster (munged, slurmctld, slurmd; 2 CPUs) from scripts/slurm/up.sh.

    Yields the environment that points sbatch/squeue at it (SLURM_CONF), also set in os.environ
    for in-process submissions. Needs root and `apt-get install slurm-wlm munge` (scripts/setup.sh).
    """
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        pytest.fail("slurm-wlm/munge are not installed: run scripts/setup.sh (as root)")
    if os.geteuid() != 0:
        pytest.fail("the local Slurm cluster needs root (CI runs as root)")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "TRACEKIT_SLURM_DIR": str(state), "TRACEKIT_SLURM_PORT": str(_free_port())}
    up = subprocess.run(
        ["bash", str(REPO / "scripts" / "slurm" / "up.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stderr
        conf = up.stdout.strip().removeprefix("export SLURM_CONF=")
        saved = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = conf
        try:
            yield {"SLURM_CONF": conf}
        finally:
            if saved is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = saved
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "slurm" / "down.sh")], env=env, timeout=120)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head node on this machine (`ray start --head --block`, 2 CPUs, private temp dir).

    Yields its address; stopped by signalling the `ray start` process, which takes down what it started.
    """
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    cmd = [
        str(ray_bin),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--num-cpus=2",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
        "--object-store-memory=200000000",
    ]
    # a throwaway cluster on loopback: no token authentication (Ray 2.5x turns it on for `ray start`)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            ok = (
                subprocess.run(
                    [str(ray_bin), "status", f"--address={address}"], capture_output=True, text=True
                ).returncode
                == 0
            )
            if ok:
                break
            assert proc.poll() is None, "ray start exited"
            assert time.monotonic() < deadline, "the Ray head did not come up in 120 s"
            time.sleep(2)
        yield address
    finally:
        # everything `ray start` spawned shares its new process group: stop that group, and only it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
