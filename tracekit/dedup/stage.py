"""Global dedup stage: prompts (exact / MinHash), completions (exact), at most k traces per prompt."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.dedup.config import DedupConfig
from tracekit.dedup.ledger_io import iter_ledger_batches
from tracekit.dedup.minhash import MinHasher
from tracekit.dedup.ngrams import nfkc
from tracekit.ledger.decision import DecisionStage

# Drop reasons (public names: they show in stats and the card).
DROP_DUPLICATE_PROMPT = "duplicate_prompt"
DROP_NEAR_DUPLICATE_PROMPT = "near_duplicate_prompt"
DROP_DUPLICATE_COMPLETION = "duplicate_completion"
DROP_MAX_PER_PROMPT = "max_per_prompt"

DEDUP_OUTPUT_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("drop_reason", pa.string()),
        ("duplicate_of", pa.string()),
        ("dedup_cluster", pa.string()),
    ]
)

_INPUT_COLUMNS = [
    "trace_id",
    "prompt_id",
    "source",
    "row_index",
    "prompt",
    "completion",
    "kept",
    "verdict",
    "completion_tokens",
]
_NUMBER = r"\d+(?:\.\d+)?"


@dataclass
class _Collected:
    """What the stage keeps in memory per trace and per distinct prompt (no texts)."""

    trace_ids: list[str] = field(default_factory=list)
    instance: list[np.ndarray] = field(default_factory=list)  # per trace: prompt instance index
    correct: list[np.ndarray] = field(default_factory=list)
    length: list[np.ndarray] = field(default_factory=list)
    completion_hash: list[np.ndarray] = field(default_factory=list)
    has_completion: list[np.ndarray] = field(default_factory=list)
    instance_index: dict[int, int] = field(default_factory=dict)
    instance_prompt: list[int] = field(default_factory=list)  # per instance: distinct-prompt index
    instance_prompt_id: list[str] = field(default_factory=list)
    prompt_index: dict[int, int] = field(default_factory=dict)  # exact key -> distinct-prompt index
    signatures: list[np.ndarray] = field(default_factory=list)
    has_words: list[np.ndarray] = field(default_factory=list)
    numbers: list[np.ndarray] = field(default_factory=list)


class DedupStage(DecisionStage):
    """Deduplicate the kept traces of a ledger; write one parquet of decisions.

    Reads only the columns it needs from every parquet shard in `input_dir`, batch by batch; only
    traces with `kept` true (or null) compete, already-dropped ones are ignored. Writes ONE parquet
    at `output_path` with a row per competing trace: `trace_id`, `drop_reason` (null = survives;
    `duplicate_prompt`, `near_duplicate_prompt`, `duplicate_completion`, `max_per_prompt`),
    `duplicate_of` (trace_id of the survivor that displaced it) and `dedup_cluster` (id of the
    prompt cluster when the cluster holds more than one prompt row).

    Survivor priority, applied at every step: verified traces (verdict `correct`) first, then the
    shorter trace (`completion_tokens`, else the completion's length in characters), then the
    smaller `trace_id` (deterministic).

    Steps, in order:
    1. prompts: a *prompt row* is (source, row_index, prompt_id); its n samples are not duplicates
       of each other. Rows whose prompts are equal after normalisation (NFKC, case, whitespace), or
       with `minhash` near-duplicates (see MinHashConfig), form a cluster; the row holding the
       best trace survives, every trace of the other rows is dropped.
    2. completions: among the survivors, identical completions (stripped) keep only the best.
    3. max_per_prompt: in each prompt cluster the k best survivors stay.

    It holds only hashes and signatures in memory (about 4 * num_perm bytes per distinct prompt and
    ~100 bytes per trace) and shares no state beyond files, so it runs as a datatrove step with
    tasks=1 on any executor (local, Slurm, Ray); with more tasks only rank 0 works.

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
        c = _Collected()
        for batch in iter_ledger_batches(self.input_dir, columns=_INPUT_COLUMNS, batch_size=cfg.batch_size):
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            df = df.filter(pl.col("kept").fill_null(True))
            if df.height == 0:
                continue
            self.stat_update("competing", value=df.height)
            df = df.with_columns(
                exact_key=pl.col("prompt")
                .map_batches(nfkc, return_dtype=pl.String)
                .str.to_lowercase()
                .str.replace_all(r"\s+", " ")
                .str.strip_chars()
                .hash(seed=1),
                instance_key=pl.struct("source", "row_index", "prompt_id", "prompt").hash(seed=2),
                completion_hash=pl.col("completion").str.strip_chars().hash(seed=3),
                has_completion=pl.col("completion").is_not_null(),
                length=pl.coalesce(
                    pl.col("completion_tokens").cast(pl.Int64),
                    pl.col("completion").str.len_chars().cast(pl.Int64),
                    pl.lit(0, dtype=pl.Int64),
                ),
                correct=(pl.col("verdict") == "correct").fill_null(False),
            )
            self._add_prompts(c, df, hasher)
            instance_keys = df["instance_key"].to_list()
            exact_keys = df["exact_key"].to_list()
            prompt_ids = df["prompt_id"].to_list()
            idx = np.empty(df.height, np.int64)
            for i, (ik, ek) in enumerate(zip(instance_keys, exact_keys, strict=True)):
                j = c.instance_index.get(ik)
                if j is None:
                    j = c.instance_index[ik] = len(c.instance_prompt)
                    c.instance_prompt.append(c.prompt_index[ek])
                    c.instance_prompt_id.append(prompt_ids[i] or "")
                idx[i] = j
            c.trace_ids.extend(df["trace_id"].to_list())
            c.instance.append(idx)
            c.correct.append(df["correct"].to_numpy())
            c.length.append(df["length"].to_numpy())
            c.completion_hash.append(df["completion_hash"].to_numpy())
            c.has_completion.append(df["has_completion"].to_numpy())
        return c

    def _add_prompts(self, c: _Collected, df: pl.DataFrame, hasher: MinHasher | None) -> None:
        new = df.unique(subset="exact_key", keep="first", maintain_order=True)
        new = new.filter(
            pl.Series([k not in c.prompt_index for k in new["exact_key"].to_list()], dtype=pl.Boolean)
        )
        if new.height == 0:
            return
        for k in new["exact_key"].to_list():
            c.prompt_index[k] = len(c.prompt_index)
        if hasher is None:
            return
        grams = hasher.ngrams(new["prompt"])
        c.signatures.append(hasher.signatures_from_ngrams(grams))
        c.has_words.append(grams.counts > 0)
        numbers = nfkc(new["prompt"]).str.extract_all(_NUMBER).list.sort().list.join(" ").hash(seed=4)
        c.numbers.append(numbers.to_numpy())

    def _hasher(self) -> MinHasher | None:
        if self.config.prompts != "minhash":
            return None
        m = self.config.minhash
        return MinHasher(num_perm=m.num_perm, bands=m.bands, ngram=m.ngram, seed=m.seed)

    # -- deciding ------------------------------------------------------------------------------
    def decide(self) -> pa.Table:
        """Read the ledger and return the decisions table (DEDUP_OUTPUT_SCHEMA)."""
        cfg = self.config
        c = self._collect()
        n = len(c.trace_ids)
        if n == 0:
            return DEDUP_OUTPUT_SCHEMA.empty_table()
        tids = np.array(c.trace_ids, dtype=object)
        instance = np.concatenate(c.instance)
        correct = np.concatenate(c.correct).astype(bool)
        length = np.concatenate(c.length).astype(np.int64)
        order = np.lexsort((tids.astype(str), length, ~correct))  # best first
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)

        inst_prompt = np.asarray(c.instance_prompt, np.int64)
        prompt_cluster = np.arange(len(c.prompt_index), dtype=np.int64)
        if cfg.prompts == "minhash":
            prompt_cluster = self._near_duplicate_clusters(c)
        inst_cluster = prompt_cluster[inst_prompt]
        cluster = inst_cluster[instance]

        reason = np.full(n, None, dtype=object)
        dup_of = np.full(n, -1, np.int64)
        alive = np.ones(n, bool)

        # 1. prompts: the row holding the cluster's best trace survives
        n_inst = len(inst_prompt)
        inst_best = np.full(n_inst, n, np.int64)
        np.minimum.at(inst_best, instance, rank)
        cluster_best = np.full(len(prompt_cluster), n, np.int64)
        np.minimum.at(cluster_best, cluster, rank)
        survivor_inst = instance[order[cluster_best[cluster]]]
        insts_per_cluster = np.bincount(inst_cluster, minlength=len(prompt_cluster))
        multi = insts_per_cluster[cluster] > 1
        if cfg.prompts != "none":
            loser = instance != survivor_inst
            exact = inst_prompt[instance] == inst_prompt[survivor_inst]
            reason[loser & exact] = DROP_DUPLICATE_PROMPT
            reason[loser & ~exact] = DROP_NEAR_DUPLICATE_PROMPT
            dup_of[loser] = order[cluster_best[cluster[loser]]]
            alive &= ~loser

        # 2. completions: identical completions keep the best survivor
        if cfg.completions == "exact":
            has = np.concatenate(c.has_completion).astype(bool) & alive
            chash = np.concatenate(c.completion_hash)
            cand = np.flatnonzero(has)
            if len(cand):
                _, group = np.unique(chash[cand], return_inverse=True)
                best = np.full(group.max() + 1, n, np.int64)
                np.minimum.at(best, group, rank[cand])
                lose = rank[cand] != best[group]
                losers = cand[lose]
                reason[losers] = DROP_DUPLICATE_COMPLETION
                dup_of[losers] = order[best[group[lose]]]
                alive[losers] = False

        # 3. at most k survivors per prompt cluster
        if cfg.max_per_prompt is not None:
            cand = np.flatnonzero(alive)
            srt = cand[np.lexsort((rank[cand], cluster[cand]))]
            g = cluster[srt]
            first = np.r_[True, g[1:] != g[:-1]]
            start = np.maximum.accumulate(np.where(first, np.arange(len(srt)), 0))
            pos = np.arange(len(srt)) - start
            over = pos >= cfg.max_per_prompt
            losers = srt[over]
            reason[losers] = DROP_MAX_PER_PROMPT
            dup_of[losers] = srt[start[over]]
            alive[losers] = False

        for r in (
            DROP_DUPLICATE_PROMPT,
            DROP_NEAR_DUPLICATE_PROMPT,
            DROP_DUPLICATE_COMPLETION,
            DROP_MAX_PER_PROMPT,
        ):
            if (cnt := int((reason == r).sum())) > 0:
                self.stat_update(r, value=cnt)
        self.stat_update("survivors", value=int(alive.sum()))

        inst_ids = np.asarray(c.instance_prompt_id, dtype=object)
        none = np.full(n, None, dtype=object)
        cluster_id = np.where(multi, inst_ids[survivor_inst], none)
        duplicate_of = np.where(dup_of >= 0, tids[np.maximum(dup_of, 0)], none)
        return pa.table(
            {
                "trace_id": pa.array(tids.tolist(), pa.string()),
                "drop_reason": pa.array(reason.tolist(), pa.string()),
                "duplicate_of": pa.array(duplicate_of.tolist(), pa.string()),
                "dedup_cluster": pa.array(cluster_id.tolist(), pa.string()),
            },
            schema=DEDUP_OUTPUT_SCHEMA,
        )

    def _near_duplicate_clusters(self, c: _Collected) -> np.ndarray:
        """Cluster index per distinct prompt: LSH candidates verified by similarity and numbers."""
        m = self.config.minhash
        hasher = self._hasher()
        assert hasher is not None
        sig = np.concatenate(c.signatures)
        has_words = np.concatenate(c.has_words)
        numbers = np.concatenate(c.numbers)
        pairs = candidate_pairs(hasher.band_keys(sig), eligible=has_words)
        if len(pairs):
            sims = np.concatenate(
                [
                    MinHasher.similarity(sig[pairs[i : i + 65536, 0]], sig[pairs[i : i + 65536, 1]])
                    for i in range(0, len(pairs), 65536)
                ]
            )
            ok = sims >= m.threshold
            if m.numbers_must_match:
                ok &= numbers[pairs[:, 0]] == numbers[pairs[:, 1]]
            pairs = pairs[ok]
        self.stat_update("near_duplicate_pairs", value=len(pairs))
        return connected_components(len(sig), pairs)


def candidate_pairs(
    band_keys: np.ndarray, *, eligible: np.ndarray | None = None, window: int = 8
) -> np.ndarray:
    """Unique (i, j) pairs, i < j, that share a key in some band.

    In each band, rows are sorted by key and every row is paired with the first row of its bucket
    and with the next `window` rows of the same bucket: all pairs for buckets up to window + 1 rows,
    a linear number of pairs for the huge buckets of templated problems.

    Example:
        >>> candidate_pairs(np.array([[1, 5], [1, 6], [2, 6]], dtype=np.uint64)).tolist()
        [[0, 1], [1, 2]]
    """
    rows = np.arange(len(band_keys)) if eligible is None else np.flatnonzero(eligible)
    found = []
    for b in range(band_keys.shape[1]):
        keys = band_keys[rows, b]
        srt = np.argsort(keys, kind="stable")
        ks = keys[srt]
        first = np.r_[True, ks[1:] != ks[:-1]]
        if first.all():
            continue
        head = np.maximum.accumulate(np.where(first, np.arange(len(ks)), 0))
        member = np.flatnonzero(~first)
        links = [(head[member], member)]
        for d in range(1, window + 1):
            same = np.flatnonzero(ks[d:] == ks[:-d])
            if not len(same):
                break
            links.append((same, same + d))
        for x, y in links:
            a, bb = rows[srt[x]], rows[srt[y]]
            found.append(np.stack([np.minimum(a, bb), np.maximum(a, bb)], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    return np.unique(np.concatenate(found), axis=0)


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
