"""Verb `prepare`: one data source → one prepared dataset file."""

from __future__ import annotations

def prepare(source: str, spec: dict, out: str) -> None:
    from snnrobust.data import prepare_dataset

    prepare_dataset(source, out, **spec)

