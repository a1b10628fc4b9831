#!/usr/bin/env bash
# Bring up a real single-node Slurm cluster (munged + slurmctld + slurmd from Debian packages) whose
# state, sockets, logs and config all live in one folder, so it never touches /etc or a system munge.
#
#   eval "$(bash scripts/slurm/up.sh)"      # prints `export SLURM_CONF=...`; sbatch/squeue then use it
#   bash scripts/slurm/down.sh               # stops exactly the daemons this script started
#
# Environment: TRACEKIT_SLURM_DIR (default /tmp/tracekit-slurm), TRACEKIT_SLURM_CPUS (default: 2, at
# most nproc), TRACEKIT_SLURM_PORT (slurmctld port, default 6917; slurmd uses PORT+1).
# Needs root (CI runs as root) and `apt-get install slurm-wlm munge` (scripts/setup.sh does it).
set -euo pipefail
D=${TRACEKIT_SLURM_DIR:-/tmp/tracekit-slurm}
PORT=${TRACEKIT_SLURM_PORT:-6917}
CPUS=${TRACEKIT_SLURM_CPUS:-2}
(( CPUS > $(nproc) )) && CPUS=$(nproc)
HOST=$(hostname -s)
MEM=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) / 2 ))

for bin in munged mungekey slurmctld slurmd sinfo; do
  command -v "$bin" >/dev/null || { echo "up.sh: $bin not found; run scripts/setup.sh (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
if [ -f "$D/slurmctld.pid" ] && kill -0 "$(cat "$D/slurmctld.pid")" 2>/dev/null; then
  echo "up.sh: a cluster is already running in $D; run scripts/slurm/down.sh first" >&2; exit 1
fi
rm -rf "$D"
mkdir -p "$D/munge" "$D/state" "$D/spool"
chmod 700 "$D/munge"

# munge: own key, socket, pid and log files (no system service needed)
mungekey --create --keyfile="$D/munge/munge.key" --force >/dev/null 2>&1
chmod 600 "$D/munge/munge.key"
munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
  --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"

cat >"$D/slurm.conf" <<CONF
ClusterName=tracekit
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=100000
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=600
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$D/slurm.conf"

slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF" -N "$HOST"

# wait until the node takes jobs
for _ in $(seq 60); do
  state=$(sinfo -h -N -o "%t" 2>/dev/null | head -1 || true)
  case "$state" in idle|mix|alloc) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 1
done
echo "up.sh: node did not become idle (state: ${state:-none}); see $D/slurmctld.log and $D/slurmd.log" >&2
exit 1
