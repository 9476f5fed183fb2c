"""Report layer: the papers' reported numbers (YAML data), paper-vs-reproduced tables and seaborn figures."""

from snnrobust.report.paper_values import list_tables, load_paper_values, parse_eps

__all__ = ["list_tables", "load_paper_values", "parse_eps"]
