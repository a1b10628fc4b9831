"""Global dedup stage: prompts (exact / MinHash), completions (exact), at most k traces per prompt."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.dedup.config import DedupConfig
from tracekit.dedup.minhash import MinHasher, Sketch, near_duplicate_clusters
from tracekit.dedup.ngrams import arrow_ints, exact_keys
from tracekit.dedup.prefetch import prefetched
from tracekit.ledger.decision import DecisionStage
from tracekit.ledger.shards import iter_ledger_batches, ledger_footers
from tracekit.record import ledger_schema_of

# Drop reasons (public names: they show in stats and the card).
DROP_DUPLICATE_PROMPT = "duplicate_prompt"
DROP_NEAR_DUPLICATE_PROMPT = "near_duplicate_prompt"
DROP_DUPLICATE_COMPLETION = "duplicate_completion"
DROP_MAX_PER_PROMPT = "max_per_prompt"

_REASONS = (DROP_DUPLICATE_PROMPT, DROP_NEAR_DUPLICATE_PROMPT, DROP_DUPLICATE_COMPLETION, DROP_MAX_PER_PROMPT)

DEDUP_OUTPUT_SCHEMA = ledger_schema_of("trace_id", "drop_reason", "duplicate_of", "dedup_cluster")

# prompt text held in prepared batches while the compiled kernels load (see DedupStage._collect)
_HOLD_BYTES = 128 << 20
# sketch rows first reserved (2 GB of signatures at 128 permutations), then grown by doubling: a
# ledger of 50M traces would otherwise reserve 25 GB that its distinct prompts never fill
_FIRST_ROWS = 1 << 22

_INPUT_COLUMNS = [
    "trace_id",
    "prompt_id",
    "source",
    "row_index",
    "prompt",
    "kept",
    "verdict",
    "completion_tokens",
    "completion_chars",
]


@dataclass
class _Collected:
    """What the stage keeps in memory per trace and per distinct prompt (no texts)."""

    trace_ids: list[pa.Array] = field(default_factory=list)
    prompt_ids: list[pa.Array] = field(default_factory=list)
    instance_key: list[np.ndarray] = field(default_factory=list)  # per trace: prompt row key
    prompt: list[np.ndarray] = field(default_factory=list)  # per trace: its prompt's row (below)
    correct: list[np.ndarray] = field(default_factory=list)
    length: list[np.ndarray] = field(default_factory=list)
    completion_hash: list[np.ndarray] = field(default_factory=list)
    has_completion: list[np.ndarray] = field(default_factory=list)
    # one row per distinct raw prompt of each batch, in order of appearance (a prompt seen in two
    # batches has two rows; `_distinct_prompts` joins rows by exact key at the end): their exact
    # keys, or (minhash) their sketches, written in place into arrays sized for the whole ledger
    # (untouched memory costs nothing)
    rows: int = 0
    exact: list[np.ndarray] = field(default_factory=list)
    sketched: Sketch | None = None


@dataclass(frozen=True)
class _Batch:
    """A prepared ledger batch: its competing traces and its distinct raw prompts."""

    trace_ids: pa.Array
    prompt_ids: pa.Array
    instance_key: np.ndarray
    correct: np.ndarray
    length: np.ndarray
    completion_hash: np.ndarray
    has_completion: np.ndarray
    texts: pa.Array  # one per distinct raw prompt, in order of appearance
    by_appearance: np.ndarray  # position of each distinct prompt (in hash order) among the texts
    inverse: np.ndarray  # per trace: its distinct prompt, in hash order


@dataclass(frozen=True)
class _Prompts:
    """The distinct prompts (equal exact keys joined), in order of first appearance."""

    count: int
    of_trace: np.ndarray  # per trace: distinct-prompt index
    rows: np.ndarray  # per distinct prompt: its first row (ascending)
    sketched: Sketch | None = None  # per row (minhash only)


@dataclass
class _Ranked:
    """Per trace: its rank and cluster; per prompt row (instance): its id and prompt."""

    trace_ids: pa.Array
    inst_ids: pa.Array  # prompt_id of each prompt row
    instance: np.ndarray  # per trace: its prompt row
    inst_prompt: np.ndarray  # per prompt row: its distinct prompt
    order: np.ndarray  # traces, best first
    rank: np.ndarray  # per trace: its position in `order`
    cluster: np.ndarray  # per trace: its prompt cluster
    cluster_best: np.ndarray  # per cluster: the rank of its best trace
    survivor_inst: np.ndarray  # per trace: the prompt row of its cluster's best trace
    multi: np.ndarray  # per trace: its cluster holds more than one prompt row


@dataclass
class _Decisions:
    """Per trace: why it is dropped (index into _REASONS, -1: survives) and the trace it duplicates."""

    reason: np.ndarray
    dup_of: np.ndarray
    alive: np.ndarray

    @classmethod
    def none(cls, n: int) -> _Decisions:
        return cls(reason=np.full(n, -1, np.int8), dup_of=np.full(n, -1, np.int64), alive=np.ones(n, bool))


class DedupStage(DecisionStage):
    """Deduplicate the kept traces of a ledger; write one parquet of decisions.

    Reads only the columns it needs from every parquet shard in `input_dir`, batch by batch; only
    traces with `kept` true (or null) compete, already-dropped ones are ignored. Writes ONE parquet
    at `output_path` with a row per competing trace: `trace_id`, `drop_reason` (null = survives;
    `duplicate_prompt`, `near_duplicate_prompt`, `duplicate_completion`, `max_per_prompt`),
    `duplicate_of` (trace_id of the survivor that displaced it) and `dedup_cluster` (id of the
    prompt cluster when the cluster holds more than one prompt row).

    Survivor priority, applied at every step: verified traces (verdict `correct`) first, then the
    shorter trace (`completion_tokens`, else `completion_chars`, else the completion's length in
    characters), then the smaller `trace_id` (deterministic).

    Steps, in order:
    1. prompts: a *prompt row* is (source, row_index, prompt_id); its n samples are not duplicates
       of each other. Rows whose prompts are equal after normalisation (NFKC, case, whitespace), or
       with `minhash` near-duplicates (see MinHashConfig), form a cluster; the row holding the
       best trace survives, every trace of the other rows is dropped.
    2. completions: among the survivors, identical completions (stripped) keep only the best.
    3. max_per_prompt: in each prompt cluster the k best survivors stay.

    It holds hashes and signatures in memory, not texts: about 4 * num_perm bytes per distinct
    prompt of each batch (a prompt whose samples span two batches counts twice) and ~100 bytes per
    trace. The one exception: while numba loads its compiled kernels (about 0.5 s), batches are
    prepared ahead and their prompt texts held, at most 128 MB. It shares no state beyond files,
    so it runs as a datatrove step with tasks=1 on any executor (local, Slurm, Ray); with more
    tasks only rank 0 works.

    Example:
        >>> from datatrove.executor import LocalPipelineExecutor
        >>> step = DedupStage(config=DedupConfig(max_per_prompt=4), input_dir="out/x/ledger",
        ...                   output_path="out/x/stages/dedup.parquet")
        >>> LocalPipelineExecutor([step], tasks=1, logging_dir="out/x/logs/dedup").run()  # doctest: +SKIP
    """

    type = "🫂 - DEDUP"
    name = "dedup"

    def __init__(self, *, config: DedupConfig | None = None, input_dir: str, output_path: str) -> None:
        super().__init__(input_dir=input_dir, output_path=output_path)
        self.config = config or DedupConfig()

    # -- reading -------------------------------------------------------------------------------
    def _collect(self) -> _Collected:
        cfg = self.config
        hasher = self._hasher()
        ready = threading.Event()  # set once the compiled kernels are loaded
        if hasher is None:
            ready.set()
        else:  # load the kernels (about 0.5 s) on a thread while the first batches are read

            def load() -> None:
                try:
                    hasher.warm_up()
                finally:  # an error shows again, with its traceback, at the first sketch
                    ready.set()

            threading.Thread(target=load, name="tracekit-numba-load", daemon=True).start()
        c = _Collected()
        # completions are read only to compare them, or to measure them in ledgers written before
        # the completion_chars column; otherwise lengths come from the token or character counts
        present, total_rows = ledger_footers(self.input_dir)
        if hasher is not None:  # virtual memory: pages are backed only when sketches fill them
            c.sketched = Sketch.allocate(min(total_rows, _FIRST_ROWS), hasher.num_perm)
        read_completion = cfg.completions == "exact" or "completion_chars" not in present
        columns = [*_INPUT_COLUMNS, "completion"] if read_completion else _INPUT_COLUMNS
        batches = iter_ledger_batches(self.input_dir, columns=columns, batch_size=cfg.batch_size)
        # while the kernels load, batches are prepared ahead (their prompt texts held, up to
        # _HOLD_BYTES) and sketched, in order, once the kernels are there
        held: list[_Batch] = []
        held_bytes = 0
        # batches with completions can be large (4096 x 20 KB): then read only a few ahead
        for batch in prefetched(batches, depth=4 if read_completion else 16):
            prepared = self._prepare(batch, read_completion=read_completion)
            if prepared is None:
                continue
            held.append(prepared)
            held_bytes += prepared.texts.nbytes
            if ready.is_set() or held_bytes >= _HOLD_BYTES:
                for b in held:
                    self._store(c, b, hasher)
                held, held_bytes = [], 0
        for b in held:
            self._store(c, b, hasher)
        return c

    def _prepare(self, batch: pa.RecordBatch, *, read_completion: bool) -> _Batch | None:
        """The batch's competing traces: their keys, ranks and distinct raw prompts (no kernels)."""
        cfg = self.config
        batch = batch.filter(pl.Series(batch.column("kept")).fill_null(True).to_arrow())
        if batch.num_rows == 0:
            return None
        self.stat_update("competing", value=batch.num_rows)
        df = pl.from_arrow(batch)
        assert isinstance(df, pl.DataFrame)
        df = df.with_columns(prompt_hash=pl.col("prompt").hash(seed=5)).select(
            "prompt_hash",
            # a prompt row is (source, row_index, prompt_id, prompt); the prompt enters by its hash
            instance_key=pl.struct("source", "row_index", "prompt_id", "prompt_hash").hash(seed=2),
            completion_hash=(
                pl.col("completion").str.strip_chars().hash(seed=3)
                if cfg.completions == "exact"
                else pl.lit(0, dtype=pl.UInt64)
            ),
            has_completion=pl.col("completion").is_not_null() if read_completion else pl.lit(False),
            length=pl.coalesce(
                pl.col("completion_tokens").cast(pl.Int64),
                pl.col("completion_chars").cast(pl.Int64),
                *([pl.col("completion").str.len_chars().cast(pl.Int64)] if read_completion else []),
                pl.lit(0, dtype=pl.Int64),
            ),
            correct=(pl.col("verdict") == "correct").fill_null(False),
        )
        # the n samples of a prompt share one raw prompt: each is normalised and sketched once
        _, first, inverse = np.unique(df["prompt_hash"].to_numpy(), return_index=True, return_inverse=True)
        by_appearance = np.argsort(first)
        rows = first[by_appearance]  # one row per distinct raw prompt, in order of appearance
        prompts = batch.column("prompt")
        return _Batch(
            trace_ids=batch.column("trace_id"),
            prompt_ids=batch.column("prompt_id"),
            instance_key=df["instance_key"].to_numpy(),
            correct=df["correct"].to_numpy(),
            length=df["length"].to_numpy(),
            completion_hash=df["completion_hash"].to_numpy(),
            has_completion=df["has_completion"].to_numpy(),
            texts=prompts if len(rows) == len(prompts) else prompts.take(arrow_ints(rows)),
            by_appearance=by_appearance,
            inverse=inverse,
        )

    @staticmethod
    def _store(c: _Collected, b: _Batch, hasher: MinHasher | None) -> None:
        """Sketch (or key) the batch's distinct prompts as new rows; keep its traces' columns."""
        m = len(b.texts)
        if hasher is not None:
            assert c.sketched is not None  # allocated by _collect
            if c.rows + m > len(c.sketched.exact):  # more rows than the footers said, or than reserved
                c.sketched = c.sketched.grown(max(2 * c.rows, c.rows + m), keep=c.rows)
            hasher.sketch(b.texts, out=c.sketched[c.rows : c.rows + m])
        else:
            c.exact.append(exact_keys(b.texts))
        row = np.empty(m, np.int64)
        row[b.by_appearance] = np.arange(c.rows, c.rows + m)
        c.rows += m
        c.prompt.append(row[b.inverse])
        c.trace_ids.append(b.trace_ids)
        c.prompt_ids.append(b.prompt_ids)
        c.instance_key.append(b.instance_key)
        c.correct.append(b.correct)
        c.length.append(b.length)
        c.completion_hash.append(b.completion_hash)
        c.has_completion.append(b.has_completion)

    @staticmethod
    def _distinct_prompts(c: _Collected) -> _Prompts:
        """Join the collected prompt rows with equal exact keys into distinct prompts."""
        sketched = c.sketched[: c.rows] if c.sketched is not None else None
        keys = sketched.exact if sketched is not None else np.concatenate(c.exact)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        by_appearance = np.argsort(first)
        index = np.empty(len(first), np.int64)
        index[by_appearance] = np.arange(len(first))
        of_trace = index[inverse][np.concatenate(c.prompt)]
        return _Prompts(count=len(first), of_trace=of_trace, rows=first[by_appearance], sketched=sketched)

    def _hasher(self) -> MinHasher | None:
        if self.config.prompts != "minhash":
            return None
        m = self.config.minhash
        return MinHasher(num_perm=m.num_perm, bands=m.bands, ngram=m.ngram, seed=m.seed, threads=m.threads)

    # -- deciding ------------------------------------------------------------------------------
    def decide(self) -> pa.Table:
        """Read the ledger and return the decisions table (DEDUP_OUTPUT_SCHEMA): rank the traces, group
        them by prompt cluster, then drop in three passes, each over the survivors of the one before."""
        cfg = self.config
        c = self._collect()
        if not c.trace_ids:
            return DEDUP_OUTPUT_SCHEMA.empty_table()
        t = self._ranked(c)
        d = _Decisions.none(len(t.trace_ids))
        if cfg.prompts != "none":
            self._drop_duplicate_prompts(t, d)
        if cfg.completions == "exact":
            self._drop_duplicate_completions(c, t, d)
        if cfg.max_per_prompt is not None:
            self._keep_best_per_prompt(t, d, cfg.max_per_prompt)
        self._count(d)
        return self._table(t, d)

    def _ranked(self, c: _Collected) -> _Ranked:
        """Each trace's rank (correct first, then shorter, then by trace id) and prompt cluster."""
        tids = pa.chunked_array(c.trace_ids).combine_chunks().cast(pa.string())
        n = len(tids)
        # a prompt row (source, row_index, prompt_id, prompt) is one instance
        _, inst_first, instance = np.unique(
            np.concatenate(c.instance_key), return_index=True, return_inverse=True
        )
        prompts = self._distinct_prompts(c)
        inst_prompt = prompts.of_trace[inst_first]
        prompt_ids = pl.Series(pa.chunked_array(c.prompt_ids)).fill_null("").to_arrow().cast(pa.string())
        correct = np.concatenate(c.correct).astype(bool)
        length = np.concatenate(c.length).astype(np.int64)
        tid_rank = np.empty(n, np.int64)
        tid_rank[pl.Series(tids).arg_sort().to_numpy()] = np.arange(n)
        order = np.lexsort((tid_rank, length, ~correct))  # best first
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)

        prompt_cluster = np.arange(prompts.count, dtype=np.int64)
        if self.config.prompts == "minhash":
            prompt_cluster = self._near_duplicate_clusters(prompts)
        inst_cluster = prompt_cluster[inst_prompt]
        cluster = inst_cluster[instance]
        # the prompt row holding each cluster's best trace
        cluster_best = np.full(len(prompt_cluster), n, np.int64)
        np.minimum.at(cluster_best, cluster, rank)
        survivor_inst = instance[order[cluster_best[cluster]]]
        insts_per_cluster = np.bincount(inst_cluster, minlength=len(prompt_cluster))
        return _Ranked(
            trace_ids=tids,
            inst_ids=prompt_ids.take(arrow_ints(inst_first)),
            instance=instance,
            inst_prompt=inst_prompt,
            order=order,
            rank=rank,
            cluster=cluster,
            cluster_best=cluster_best,
            survivor_inst=survivor_inst,
            multi=insts_per_cluster[cluster] > 1,
        )

    @staticmethod
    def _drop_duplicate_prompts(t: _Ranked, d: _Decisions) -> None:
        """1. prompts: the row holding the cluster's best trace survives; the other rows' traces go."""
        loser = t.instance != t.survivor_inst
        exact = t.inst_prompt[t.instance] == t.inst_prompt[t.survivor_inst]
        d.reason[loser & exact] = _REASONS.index(DROP_DUPLICATE_PROMPT)
        d.reason[loser & ~exact] = _REASONS.index(DROP_NEAR_DUPLICATE_PROMPT)
        d.dup_of[loser] = t.order[t.cluster_best[t.cluster[loser]]]
        d.alive &= ~loser

    @staticmethod
    def _drop_duplicate_completions(c: _Collected, t: _Ranked, d: _Decisions) -> None:
        """2. completions: of identical completions, the best ranked survivor stays."""
        has = np.concatenate(c.has_completion).astype(bool) & d.alive
        chash = np.concatenate(c.completion_hash)
        cand = np.flatnonzero(has)
        if not len(cand):
            return
        _, group = np.unique(chash[cand], return_inverse=True)
        best = np.full(group.max() + 1, len(t.rank), np.int64)
        np.minimum.at(best, group, t.rank[cand])
        lose = t.rank[cand] != best[group]
        losers = cand[lose]
        d.reason[losers] = _REASONS.index(DROP_DUPLICATE_COMPLETION)
        d.dup_of[losers] = t.order[best[group[lose]]]
        d.alive[losers] = False

    @staticmethod
    def _keep_best_per_prompt(t: _Ranked, d: _Decisions, k: int) -> None:
        """3. at most k survivors per prompt cluster, the best ranked."""
        cand = np.flatnonzero(d.alive)
        srt = cand[np.lexsort((t.rank[cand], t.cluster[cand]))]
        g = t.cluster[srt]
        first = np.r_[True, g[1:] != g[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(srt)), 0))
        pos = np.arange(len(srt)) - start
        over = pos >= k
        losers = srt[over]
        d.reason[losers] = _REASONS.index(DROP_MAX_PER_PROMPT)
        d.dup_of[losers] = srt[start[over]]
        d.alive[losers] = False

    def _count(self, d: _Decisions) -> None:
        for i, r in enumerate(_REASONS):
            if (cnt := int((d.reason == i).sum())) > 0:
                self.stat_update(r, value=cnt)
        self.stat_update("survivors", value=int(d.alive.sum()))

    @staticmethod
    def _table(t: _Ranked, d: _Decisions) -> pa.Table:
        reasons = pa.DictionaryArray.from_arrays(
            arrow_ints(d.reason, null=d.reason < 0), pl.Series(_REASONS).to_arrow()
        ).cast(pa.string())
        survivor = t.trace_ids.take(arrow_ints(np.maximum(d.dup_of, 0), null=d.dup_of < 0))
        cluster_id = t.inst_ids.take(arrow_ints(t.survivor_inst, null=~t.multi))
        return pa.table(
            {"trace_id": t.trace_ids, "drop_reason": reasons, "duplicate_of": survivor, "dedup_cluster": cluster_id},
            schema=DEDUP_OUTPUT_SCHEMA,
        )

    def _near_duplicate_clusters(self, prompts: _Prompts) -> np.ndarray:
        """Cluster index per distinct prompt: LSH candidates verified by similarity and numbers.

        LSH runs over the rows in place (no copy of the signatures); only each prompt's first row
        takes part, and a cluster's label is its smallest row, the first row of a prompt.
        """
        m = self.config.minhash
        hasher = self._hasher()
        assert hasher is not None and prompts.sketched is not None
        sk = prompts.sketched
        eligible = np.zeros(len(sk.exact), np.bool_)
        eligible[prompts.rows] = sk.has_words[prompts.rows]
        labels, candidates, links = near_duplicate_clusters(
            hasher,
            signatures=sk.signatures,
            has_words=eligible,
            numbers=sk.numbers,
            threshold=m.threshold,
            numbers_must_match=m.numbers_must_match,
        )
        self.stat_update("near_duplicate_candidates", value=candidates)
        self.stat_update("near_duplicate_links", value=links)
        prompt_of_row = np.full(len(sk.exact), -1, np.int64)
        prompt_of_row[prompts.rows] = np.arange(prompts.count)
        return prompt_of_row[labels[prompts.rows]]


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Component label (smallest member index) per node, by union-find over the pairs."""
    parent = np.arange(n, dtype=np.int64)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    while True:  # pointer jumping flattens every tree to its root
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt
