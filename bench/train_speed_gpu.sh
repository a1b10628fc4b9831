#!/bin/bash
# Issue 17 GPU run: bench/train_speed.py gpu (TRL vs tracekit, Qwen2.5 0.5B/1.5B shapes), then the GPU tests.
# Run on the GPU machine from the repository root (docs/performance.md, "GPU run"): WHL holds the carried wheels
# (TRL, datasets, pydantic, ...); PROJ is the checkout whose tracekit/, tests/ and bench/ are measured.
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
WHL=$(cd "${WHL:-.whl}" && pwd); PROJ=$(cd "${PROJ:-$(dirname "$0")/..}" && pwd); PY=${PY:-python3}
BENCH_S=${BENCH_S:-300}; TESTS_S=${TESTS_S:-70}; ROWS=${ROWS:-}; STEPS=${STEPS:-20}; SITE=${SITE:-/tmp/site}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec > >(tee -a "$OUT/log") 2>&1
T0=$(date +%s)
echo "== env $(date -u)"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 | head -3
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $(ls $WHL/*.whl | grep -v -e fsspec -e pyarrow) || { echo "wheel install failed"; exit 1; }
# datasets 5.2 wants fsspec <= 2026.9.0: carried, used only if the machine's is newer
if ! $PY -c "import fsspec,sys; from packaging.version import Version as V; sys.exit(V(fsspec.__version__) > V('2026.9.0'))"; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" $WHL/fsspec-*.whl; echo "fsspec from wheel"; fi
export PYTHONPATH="$SITE:$PROJ"
$PY - <<'PYEOF'
import importlib, importlib.util, torch
import importlib.metadata as md
for m, dist in (("torch", "torch"), ("transformers", "transformers"), ("trl", "trl"), ("datasets", "datasets"),
                ("pydantic", "pydantic"), ("pyarrow", "pyarrow"), ("fsspec", "fsspec"), ("accelerate", "accelerate"),
                ("huggingface_hub", "huggingface_hub"), ("triton", "triton"), ("liger_kernel.transformers", "liger_kernel")):
    try:
        importlib.import_module(m)
        print(m, md.version(dist))
    except Exception as e:
        print(m, "IMPORT FAILED", repr(e)[:300])
print("flash_attn", importlib.util.find_spec("flash_attn") is not None, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
import tracekit.train.trainer, tracekit.train.attention as a
print("tracekit imports; auto attention ->", a.resolve_backend(requested="auto", device=torch.device("cuda" if torch.cuda.is_available() else "cpu")))
PYEOF
echo "== bench ($(( $(date +%s) - T0 ))s in)"
timeout $((BENCH_S + 20)) $PY $PROJ/bench/train_speed.py gpu --out "$OUT" --work /tmp/tsw --deadline $BENCH_S --steps $STEPS --skip 6 ${ROWS:+--rows $ROWS} ${VOCAB:+--vocab $VOCAB}
tar czf "$OUT/rows.tgz" -C /tmp/tsw rows 2>/dev/null
echo "== gpu tests ($(( $(date +%s) - T0 ))s in)"
(cd $PROJ && timeout $TESTS_S $PY -m pytest -q -x -p no:cacheprovider tests/train/test_gpu.py 2>&1 | tail -40)
echo "== done in $(( $(date +%s) - T0 ))s"
