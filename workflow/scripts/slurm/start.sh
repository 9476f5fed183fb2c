#!/usr/bin/env bash
# Single-node Slurm on this machine for `make slurm-test` (../shared/notes/slurm.md): munged, slurmctld and
# slurmd started by hand (no systemd). The pids it starts go to $STATE/started.pids; stop.sh kills exactly those.
# A controller that already answers is reused and left running. Needs root.
set -euo pipefail
STATE=${SNNROBUST_SLURM_STATE:-/tmp/snnrobust-slurm}
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
MARK="# written by snnrobust workflow/scripts/slurm/start.sh"
PIDS=$STATE/started.pids
die() { echo "slurm-start: error: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "starting the Slurm daemons needs root"
for bin in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd; do
  [ -x "$bin" ] || die "$bin is missing (apt-get install -y slurm-wlm munge)"
done
mkdir -p "$STATE"
[ ! -s "$PIDS" ] || die "$PIDS exists: daemons of an earlier start are still recorded (run stop.sh first)"

if timeout 5 sinfo -h -o %T >/dev/null 2>&1; then
  echo "slurm-start: a Slurm controller already answers; reusing it (nothing started)"
  exit 0
fi
if [ -e "$CONF" ] && [ "$(head -1 "$CONF")" != "$MARK" ]; then
  die "$CONF exists and was not written by this script; start that Slurm yourself"
fi

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
started() {  # a daemon forks and writes its pid file shortly after
  for _ in $(seq 40); do [ -s "$2" ] && break; sleep 0.25; done
  [ -s "$2" ] || die "$1 started but wrote no pid file $2 (see /var/log/slurm/)"
  echo "$1 $(cat "$2")" >> "$PIDS"; }

[ -s /etc/munge/munge.key ] || {
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
host=$(hostname -s)
getent hosts "$host" >/dev/null || die "host name $host does not resolve (add it to /etc/hosts)"
node=$(slurmd -C | head -1)   # NodeName=<host> CPUs=... RealMemory=...
mkdir -p "$(dirname "$CONF")"
cat > "$CONF" <<CONF
$MARK
ClusterName=local
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
MpiDefault=none
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
install -d -o slurm -g slurm -m 755 /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
rm -rf /var/lib/slurm/slurmctld/*   # a clean slate: no jobs or node states of an earlier start

if ! alive /run/munge/munged.pid; then
  install -d -o munge -g munge -m 755 /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  started munged /run/munge/munged.pid
fi
rm -f /run/slurmctld.pid /run/slurmd.pid
/usr/sbin/slurmctld && started slurmctld /run/slurmctld.pid
/usr/sbin/slurmd && started slurmd /run/slurmd.pid
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "slurm-start: node $host idle in partition debug (pids: $(cut -d' ' -f2 "$PIDS" | xargs))"
    exit 0
  fi
  sleep 0.5
done
die "the node did not come up idle in 30 s (see /var/log/slurm/slurmctld.log and slurmd.log)"
