#!/usr/bin/env bash
# Stop the cluster scripts/slurm/up.sh started (by the pids it recorded) and remove its folder.
# Cancels the cluster's jobs first so no task outlives it.
set -uo pipefail
D=${TRACEKIT_SLURM_DIR:-/tmp/tracekit-slurm}
[ -d "$D" ] || exit 0
if [ -f "$D/slurm.conf" ] && [ -f "$D/slurmctld.pid" ]; then
  SLURM_CONF="$D/slurm.conf" scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  sleep 1
fi
stop() {  # stop one daemon by its pid file; wait for it to exit
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}
stop "$D/slurmd.pid"
stop "$D/slurmctld.pid"
stop "$D/munge/munged.pid"
rm -rf "$D"
