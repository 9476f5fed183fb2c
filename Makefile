# snnrobust — the two commands of the README, plus bench and lint.
#   make reproduce          default (offline laptop) scale; SCALE=cpu or SCALE=paper for the others;
#                           STUDY=sr|sparsity_trail|spiking_pgd builds one paper (default: all)
#   make test               installs if needed (from the lock file), runs the test suite
#   make lock               regenerate envs/requirements-linux-x86_64-py311.lock from pyproject.toml (pip-compile)
#   make check-env          the venv equals the lock file, package for package
#   make gpu-check          default DAG on CUDA vs the CPU run (needs a GPU)
#   make reproduce PROFILE=slurm   every job through sbatch (workflow/profiles/slurm; partitions checked first)
#   make slurm-test         one-node Slurm on this machine (root): default DAG via sbatch, a scancel-ed job resumes
#   make remote URL=... / make push / make pull [STUDY=..]   share results through a DVC remote (SSH or folder)
#   make bench              SNN vs ANN forward+backward timing (multi-step vs single-step loop), and seconds
#                           per training step of the SR paper's methods and of the ensemble attack vs PGD
#                           and Spiking-PGD vs PGD wall-clock (forward, backward and block reuse)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SCALE ?= default
PROFILE ?= default
STUDY ?= all
CORES ?= 2
SNAKEMAKE := $(VENV)/bin/snakemake --workflow-profile workflow/profiles/$(PROFILE) --configfile config/$(SCALE).yaml --cores $(CORES)
REPORT := results/report.html
# Local runs start each job's verb in a fork of a warm server (torch imported once: snnrobust.preload); PRELOAD=0
# turns it off. Slurm jobs run on their own.
PRELOAD ?= $(if $(filter default,$(PROFILE)),1,0)
WARM := $(if $(filter 1,$(PRELOAD)),$(PY) -m snnrobust.preload run --,)
STAMP := $(VENV)/.installed
# The environment lock (pip-compile --generate-hashes) of this platform and Python; `make lock` remakes it.
LOCK ?= envs/requirements-linux-x86_64-py311.lock
LOCK_VENV ?= .venv-lock
PIP_TOOLS := pip-tools==7.7.0
# Rules call `python -m snnrobust`: the venv comes first on PATH (conda users get their env instead).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install check-env lock reproduce report readme-results test bench lint dry-run clean gpu-check

# Every package comes from the lock file, hashes checked, no resolver involved; then the project itself
# (--no-deps: the lock already holds its dependencies). `make check-env` compares the venv with the lock.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m snnrobust.envlock --lock $(LOCK)
	@touch $@

install: $(STAMP)

check-env: $(STAMP)
	$(PY) -m snnrobust.envlock --lock $(LOCK)

# Regenerate the lock from pyproject.toml's pins (pip-tools, in its own venv so it never enters the lock).
# pip-compile, not uv: pip reads this machine's pip config (local wheel mirrors, the torch cap), uv does not.
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS); }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--extra test --strip-extras --no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml
	$(PYTHON) -c 'import sys; sys.path.insert(0, "src"); from snnrobust.envlock import main; sys.exit(main(sys.argv[1:]))' \
		--lock $(LOCK) --write-conda envs/snnrobust.yaml
	@echo "lock: $(LOCK) and envs/snnrobust.yaml (now run: make install && make test)"

reproduce: $(STAMP)
	@test -s config/$(SCALE).yaml || { echo "snnrobust: error: config/$(SCALE).yaml is missing or empty" >&2; exit 2; }
	@$(PY) workflow/scripts/slurm/check_profile.py workflow/profiles/$(PROFILE) >/dev/null
	@$(PY) -m snnrobust unlock-stale
	$(WARM) $(SNAKEMAKE) $(STUDY)
	@if [ ! -f $(REPORT) ] || [ -n "$$(find results -type f -newer $(REPORT) -not -path 'results/checkpoints/*' -not -name README.md -print -quit)" ]; then \
		$(SNAKEMAKE) $(STUDY) --report $(REPORT) && echo "report: $(REPORT)"; \
	else echo "report up to date: $(REPORT)"; fi

report: $(STAMP)
	$(SNAKEMAKE) $(STUDY) --report $(REPORT)

# The README's results section of this scale, regenerated from results/ (never typed in by hand).
readme-results: $(STAMP)
	$(PY) -m snnrobust readme-results --scale $(SCALE)

dry-run: $(STAMP)
	$(SNAKEMAKE) -n $(STUDY)

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

bench: $(STAMP)
	$(PY) -m snnrobust.bench --out results/bench/bench.json
	$(PY) -m snnrobust.bench_methods --out results/bench/methods.json
	$(PY) -m snnrobust.bench_threads --out results/bench/threads.json
	$(PY) -m snnrobust.bench_startup --out results/bench/startup.json
	$(PY) -m snnrobust.bench_spiking_pgd --out results/bench/spiking_pgd.json

# The default DAG on CUDA in a scratch copy; clean accuracies compared with this machine's CPU run.
gpu-check: $(STAMP)
	@test -d results/models || $(MAKE) reproduce
	$(PY) -m snnrobust.gpu_check --cpu-results results

# --- Cluster (Slurm) -------------------------------------------------------------------------------------
# `make reproduce PROFILE=slurm` submits every job with sbatch (snakemake-executor-plugin-slurm); before it,
# check_profile.py stops in one line if a partition the profile names does not exist (nothing is touched).
# `make slurm-test` starts munged, slurmctld and slurmd here (root; ../shared/notes/slurm.md), runs the default
# DAG through that profile in a scratch copy, scancel-s one training job after its first checkpoint (it is
# retried and resumes from it), builds the report, and stops the daemons by pid.
.PHONY: slurm-test
slurm-test: $(STAMP)
	bash workflow/scripts/slurm/slurm_test.sh

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint --configfile config/default.yaml

# ---- Versioned artifact sharing with DVC (src/snnrobust/sharing) ------------------------------------------
#   make remote URL=ssh://[user@]host[:port]/path [KEYFILE=~/.ssh/id]   default remote (URL in .dvc/config,
#                           the key in .dvc/config.local); a local folder works too
#   make push [SCALE=..] [STUDY=..]   regenerates dvc.yaml from the DAG, commits the results (writes dvc.lock)
#                           and uploads them; then commit dvc.yaml + dvc.lock and tag the commit
#   make pull [SCALE=..] [STUDY=..]   fetches this version's results, checks each against dvc.lock, checks
#                           them out; STUDY=sr fetches that paper's files only
.PHONY: remote push pull
SHARING := $(PY) -m snnrobust.sharing

remote: $(STAMP)
	$(SHARING) remote --url "$(URL)" $(if $(KEYFILE),--keyfile "$(KEYFILE)")

push: $(STAMP)
	$(SHARING) push --scale $(SCALE) --study $(STUDY)

pull: $(STAMP)
	$(SHARING) pull --scale $(SCALE) --study $(STUDY)
# ---- end of DVC sharing ------------------------------------------------------------------------------------

clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf data/prepared logs .snakemake .dvc-mtimes
