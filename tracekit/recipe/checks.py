"""Checks of a recipe beyond its schema: files exist, named columns exist in the sources, settings that
only make sense together are together."""

from __future__ import annotations

from tracekit.recipe.loader import LoadedRecipe, Problem
from tracekit.sources.base import peek_columns, source_files, why_no_rows


def check_sources(loaded: LoadedRecipe) -> list[Problem]:
    problems: list[Problem] = []
    for i, src in enumerate(loaded.recipe.sources):
        if src.hub is not None:
            continue
        files = source_files(src, loaded.base_dir)
        missing = [f for f in files if not f.exists()]
        if not files or missing:
            where = missing[0] if missing else loaded.resolve_path(src.path or "")
            path: tuple[str | int, ...] = ("sources", i, "path")
            problems.append(Problem(path, f"file not found: {where}", loaded.line(path)))
            continue
        empty = {f: why for f in files if (why := why_no_rows(src, f))}
        if len(empty) == len(files):  # no file of the source yields a row (some may: the rest are skipped)
            path = ("sources", i, "path")
            problems.append(Problem(path, "; ".join(f"{f} {why}" for f, why in empty.items()), loaded.line(path)))
            continue
        cols = peek_columns(src, loaded.base_dir)
        if cols is None:
            continue
        for col in src.match or {}:
            if col not in cols:
                path = ("sources", i, "match", col)
                msg = f"column {col!r} does not exist in {files[0].name} (it has: {', '.join(cols)})"
                problems.append(Problem(path, msg, loaded.line(path)))
        for key, col in src.columns.model_dump().items():
            if col is None or col in cols:
                continue
            if key == "prompt" and src.columns.messages and "prompt" not in src.columns.model_fields_set:
                continue  # the default prompt column is optional when messages carry the prompt
            path = ("sources", i, "columns", key)
            problems.append(
                Problem(path, f"column {col!r} does not exist in {files[0].name} (it has: {', '.join(cols)})", loaded.line(path))
            )
    return problems


# domains whose traces end in no single final answer to vote on
NO_FINAL_ANSWER = ("code", "general")


def check_votes(loaded: LoadedRecipe) -> list[Problem]:
    """Majority answers (`no_gold` / `gold_repair: majority`) only where the math verifier applies."""
    r = loaded.recipe
    problems: list[Problem] = []

    def wrong(path: tuple[str | int, ...], msg: str) -> None:
        problems.append(Problem(path, msg, loaded.line(path)))

    def key_of(cfg: object, base: tuple[str | int, ...]) -> tuple[str | int, ...]:
        return (*base, "no_gold" if getattr(cfg, "no_gold", None) else "gold_repair")

    top = r.verify.math
    if top is not None and top.votes:
        bad = [d for d in top.domains if d in NO_FINAL_ANSWER]
        if bad:
            wrong(key_of(top, ("verify", "math")), f"majority voting needs a final answer to compare; domain(s) {bad} have none")
        elif not any(s.domain in top.domains and (s.verify is None or s.verify.math is None) for s in r.sources):
            wrong(
                key_of(top, ("verify", "math")),
                f"majority voting applies to domains {top.domains}, and no source without its own `verify.math` has one",
            )
    for i, s in enumerate(r.sources):
        own = s.verify.math if s.verify is not None else None
        if own is None or not own.votes:
            continue
        if s.domain not in own.domains or s.domain in NO_FINAL_ANSWER:
            wrong(
                key_of(own, ("sources", i, "verify", "math")),
                f"majority voting is for math answers; source {s.name!r} has domain {s.domain!r}",
            )
    return problems


def check_benchmarks(loaded: LoadedRecipe) -> list[Problem]:
    """The decontamination benchmarks that are files (user files, local registry copies, an eval
    config and its files) exist and hold the named columns. Hub datasets are not checked here."""
    from tracekit.decontam.benchmarks import eval_benchmark_texts
    from tracekit.decontam.config import BenchmarkEntry
    from tracekit.decontam.registry import BENCHMARKS, BenchmarkFileError, load_benchmark, local_copy

    cfg = loaded.recipe.decontaminate
    if cfg is None:
        return []
    data_dir = str(loaded.resolve_path(cfg.data_dir)) if cfg.data_dir else None
    problems: list[Problem] = []
    if cfg.benchmarks == "eval":
        assert cfg.eval_config is not None
        path: tuple[str | int, ...] = ("decontaminate", "eval_config")
        file = loaded.resolve_path(cfg.eval_config)
        try:
            from tracekit.eval.benchmarks import parse_bench_arg
            from tracekit.eval.config import EvalConfigFileError, load_eval_config

            ev = load_eval_config(file)
            if any(parse_bench_arg(a)[1] is not None for a in ev.benchmarks):
                eval_benchmark_texts(str(file), data_dir=data_dir)
        except (BenchmarkFileError, EvalConfigFileError, ValueError) as e:
            problems.append(Problem(path, str(e), loaded.line(path)))
        return problems
    for i, b in enumerate(cfg.benchmarks):
        src = BENCHMARKS[b] if isinstance(b, str) else b.source()
        if isinstance(b, BenchmarkEntry) and b.path:
            src = b.model_copy(update={"path": str(loaded.resolve_path(b.path))}).source()
        if local_copy(src, data_dir) is None:
            continue  # read from the Hub when the build runs
        try:
            load_benchmark(src, data_dir=data_dir)
        except BenchmarkFileError as e:
            key: tuple[str | int, ...] = ("decontaminate", "benchmarks", i)
            problems.append(Problem(key, str(e), loaded.line(key)))
    return problems


def check_verifier_domains(loaded: LoadedRecipe) -> list[Problem]:
    """One verifier per domain: with two (say `math` and `llm` both on math), the later would silently
    overwrite the earlier's verdict. Checked for the recipe's `verify:` and for each source's own."""
    problems: list[Problem] = []
    r = loaded.recipe

    def check(cfg: object, base: tuple[str | int, ...]) -> None:
        seen: dict[str, str] = {}
        for name in ("math", "code", "llm"):
            v = getattr(cfg, name, None)
            for d in getattr(v, "domains", None) or []:
                if d in seen:
                    path = (*base, name, "domains")
                    msg = f"domain {d!r} is already checked by `{seen[d]}`; give each domain one verifier"
                    problems.append(Problem(path, msg, loaded.line(path)))
                seen.setdefault(d, name)

    check(r.verify, ("verify",))
    for i, s in enumerate(r.sources):
        if s.verify is not None:
            check(s.verify, ("sources", i, "verify"))
    return problems


def check_hub_sources(loaded: LoadedRecipe) -> list[Problem]:
    """Each Hub source's split and named columns, read from the dataset card's metadata on the Hub (no
    data downloaded). A source the Hub does not answer for is named with what could not be checked, so
    `tracekit validate` never passes a recipe it could not look at. Once the Hub is unreachable the
    other Hub sources are not tried again (each try would wait for the network)."""
    problems: list[Problem] = []
    down: str | None = None  # why the Hub did not answer, once it did not
    for i, src in enumerate(loaded.recipe.sources):
        if src.hub is None:
            continue
        path: tuple[str | int, ...] = ("sources", i, "hub")
        named = {k: v for k, v in src.columns.model_dump().items() if v is not None}
        named.update({f"match.{k}": k for k in src.match or {}})
        unchecked = (
            f"not checked: that split {src.split!r} exists, its columns "
            f"({', '.join(f'{k}={v}' for k, v in named.items())}), its row count, the first prompt"
        )
        if down is None:
            try:
                splits, cols = hub_split_columns(src.hub, src.config)
            except Exception as e:  # offline, refused, timed out; or the dataset is not there
                reason = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
                if type(e).__name__ in ("RepositoryNotFoundError", "GatedRepoError"):
                    msg = f"source {src.name!r}: Hub dataset {src.hub!r} was not found or is not readable ({reason}); {unchecked}"
                    problems.append(Problem(path, msg, loaded.line(path)))
                    continue
                down = reason
        if down is not None:
            msg = f"source {src.name!r}: Hub dataset {src.hub!r} could not be reached ({down}); {unchecked}"
            problems.append(Problem(path, msg, loaded.line(path)))
            continue
        p: tuple[str | int, ...]
        if splits and src.split not in splits:
            p = ("sources", i, "split")
            msg = f"split {src.split!r} does not exist in {src.hub} (it has: {', '.join(splits)})"
            problems.append(Problem(p, msg, loaded.line(p)))
        for key, col in named.items():
            if cols and col not in cols and not (key == "prompt" and src.columns.messages):
                p = ("sources", i, "match", col) if key.startswith("match.") else ("sources", i, "columns", key)
                msg = f"column {col!r} does not exist in {src.hub} (it has: {', '.join(cols)})"
                problems.append(Problem(p, msg, loaded.line(p)))
    return problems


def hub_split_columns(repo: str, config: str | None) -> tuple[list[str], list[str]]:
    """(splits, columns) of a Hub dataset config from its card's `dataset_info`; empty lists when the
    card does not say. Raises when the Hub does not answer."""
    from huggingface_hub import HfApi

    card = HfApi().dataset_info(repo, timeout=30).card_data
    meta = card.to_dict().get("dataset_info") if card is not None else None
    entries = meta if isinstance(meta, list) else [meta] if isinstance(meta, dict) else []
    wanted = config or "default"
    entry = next((e for e in entries if e.get("config_name", "default") == wanted), None)
    if entry is None and len(entries) == 1 and config is None:
        entry = entries[0]
    if entry is None:
        return [], []
    splits = [sp["name"] for sp in entry.get("splits") or [] if "name" in sp]
    cols = [f["name"] for f in entry.get("features") or [] if isinstance(f, dict) and "name" in f]
    return splits, cols
def check_select(loaded: LoadedRecipe) -> list[Problem]:
    """`select:` names existing sources and columns, and gets a GPU on a cluster when it runs vLLM."""
    from tracekit.select.config import ColumnPassRate, ReplayStudent, students_of, uses_vllm, window_of

    r = loaded.recipe
    if r.select is None:
        return []
    problems: list[Problem] = []

    def wrong(path: tuple[str | int, ...], msg: str) -> None:
        problems.append(Problem(path, msg, loaded.line(path)))

    names = [s.name for s in r.sources]
    pr = r.select.pass_rate
    several = isinstance(pr, list)
    for part, cfg in (("pass_rate", None if pr is None else window_of(pr)), ("labels", r.select.labels)):
        where: tuple[str | int, ...] = ("select", part, 0) if several and part == "pass_rate" else ("select", part)
        for j, name in enumerate(getattr(cfg, "sources", None) or []):
            if name not in names:
                wrong((*where, "sources", j), f"no source is named {name!r} (sources: {', '.join(names)})")
    columns: list[tuple[tuple[str | int, ...], str]] = []  # (where, column) of each column the selection reads
    if isinstance(pr, ColumnPassRate):
        columns.append((("select", "pass_rate", "column"), pr.column))
    for i, (_, student) in enumerate(students_of(pr)):
        if isinstance(student, ReplayStudent):
            at: tuple[str | int, ...] = ("select", "pass_rate", *([i] if several else []), "generations")
            columns.append((at, student.generations))
    window = None if pr is None else window_of(pr)
    for at, col in columns:
        for s in r.sources:
            if window is not None and window.sources is not None and s.name not in window.sources or s.hub is not None:
                continue
            cols = peek_columns(s, loaded.base_dir) if source_files(s, loaded.base_dir) else None
            if cols is not None and col not in cols:
                wrong(at, f"column {col!r} does not exist in source {s.name!r} (it has: {', '.join(cols)})")
    has_verifier = any(
        v is not None and (v.math or v.code or getattr(v, "llm", None)) for v in (r.verify, *(s.verify for s in r.sources))
    )
    if pr is not None and not isinstance(pr, ColumnPassRate) and not has_verifier:
        wrong(("select", "pass_rate"), "a student's pass rate needs the build's verifiers: add `verify: {math: {}}` (or `code`)")
    ex = r.executor
    if ex.kind != "local" and ex.gpus_per_task > 0 and uses_vllm(r.select):
        own = ex.stages.get("select")
        if "select" not in ex.gpu_stages and not (own is not None and own.gpus_per_task):
            wrong(
                ("executor", "gpu_stages"),
                "the select stage runs vLLM (student or judge) but gets no GPU: add `select` to `gpu_stages` "
                "(or give it `stages: {select: {gpus_per_task: N}}`)",
            )
    return problems
