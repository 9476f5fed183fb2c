#!/usr/bin/env bash
# `make slurm-test`: the default DAG through the Slurm executor on a one-node Slurm started on this machine.
#   1. start munged, slurmctld and slurmd (start.sh; needs root and apt's slurm-wlm + munge),
#   2. check the slurm profile's partitions, 3. run the DAG in a scratch copy with one training job
#   scancel-ed after its first checkpoint (scancel_resume.py checks the retry resumed from it),
#   4. build the report through the same profile, 5. stop the daemons by pid (also on failure).
# The scratch copy is kept (its path is printed); results/ of this checkout is never touched.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
BIN=$(dirname "$PY")
die() { echo "slurm-test: error: $*" >&2; exit 2; }

command -v sbatch >/dev/null || die "sbatch not found (apt-get install -y slurm-wlm munge)"
[ "$(id -u)" = 0 ] || die "the one-node Slurm needs root to start its daemons"
[ -x "$BIN/snakemake" ] || die "$BIN/snakemake not found (make install)"
"$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null || die "snakemake-executor-plugin-slurm is not installed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/snnrobust-slurm-test.XXXXXX")
for item in Snakefile workflow config envs; do cp -r "$REPO/$item" "$WORK/"; done
echo "slurm-test: scratch copy $WORK"

trap 'bash "$HERE/stop.sh"' EXIT   # also stops what a start that failed half-way did start
bash "$HERE/start.sh"
"$PY" "$HERE/check_profile.py" "$WORK/workflow/profiles/slurm"

export PATH="$BIN:$PATH"   # the jobs call `python -m snnrobust`
SNAKEMAKE=("$BIN/snakemake" --workflow-profile workflow/profiles/slurm --configfile config/default.yaml
  --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 3 --latency-wait 10)
t0=$(date +%s)
"$PY" "$HERE/scancel_resume.py" --workdir "$WORK" -- "${SNAKEMAKE[@]}"
(cd "$WORK" && "${SNAKEMAKE[@]}" --report results/report.html > report.log 2>&1) \
  || die "the report failed (see $WORK/report.log)"
echo "slurm-test: report $WORK/results/report.html; $(( $(date +%s) - t0 )) s in all"
