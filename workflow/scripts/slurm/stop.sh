#!/usr/bin/env bash
# Stop the daemons start.sh started, by the pids it recorded (slurmd, slurmctld, then munged); cancels the
# jobs still on that controller first. Does nothing when start.sh reused a running Slurm.
set -uo pipefail
STATE=${SNNROBUST_SLURM_STATE:-/tmp/snnrobust-slurm}
PIDS=$STATE/started.pids
[ -s "$PIDS" ] || { echo "slurm-stop: nothing this script started is recorded"; exit 0; }
grep -q '^slurmctld ' "$PIDS" && scancel --user="$(id -un)" 2>/dev/null
for name in slurmd slurmctld munged; do
  pid=$(awk -v n="$name" '$1 == n {print $2}' "$PIDS")
  [ -n "$pid" ] || continue
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && echo "slurm-stop: $name ($pid) still running after 10 s" >&2
  echo "slurm-stop: stopped $name ($pid)"
done
rm -f "$PIDS"
