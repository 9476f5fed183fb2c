"""Verbs `table` and `figure`: tidy result files → tables and seaborn figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.io import atomic_path
from snnrobust.commands._common import _take


def read_rows(paths: list[str]) -> pd.DataFrame:
    """Concatenate the ``rows`` of result JSON files, or CSV files, into one tidy frame."""
    frames = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SnnRobustError(f"result file not found: {path}")
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
            frame["source_file"] = str(path)
            frames.append(frame)
        else:
            try:
                frames.append(pd.DataFrame(json.loads(path.read_text())["rows"]))
            except (json.JSONDecodeError, KeyError):
                raise SnnRobustError(f"not a snnrobust result file: {path}") from None
    return pd.concat(frames, ignore_index=True)


def table(inputs: list[str], spec: dict, out: str, out_html: str | None) -> None:
    from snnrobust.report.build import build_table

    df = build_table(read_rows(inputs), spec)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    if out_html:
        from snnrobust.report.tables import to_html

        with atomic_path(out_html) as tmp:
            tmp.write_text(to_html(df, spec.get("title", Path(out).stem)))


def figure(inputs: list[str], spec: dict, out: str) -> None:
    from snnrobust.report.figures import FIGURES
    from snnrobust.report.build import figure_frame

    kind = _take(spec, "kind", required=True)
    draw = FIGURES.get(kind)
    df = figure_frame(kind, read_rows(inputs))
    with atomic_path(out) as tmp:
        draw(df, tmp.with_suffix(Path(out).suffix))
        tmp.with_suffix(Path(out).suffix).replace(tmp)
