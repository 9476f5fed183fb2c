"""Versioned artifact sharing with DVC: dvc.yaml generated from the Snakemake DAG (one stage per set of
studies that needs a file), and `make push` / `make pull` / `make remote` with every file checked
against dvc.lock. Entry point: ``python -m snnrobust.sharing <stages|push|pull|remote|build>``."""
