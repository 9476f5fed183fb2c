"""Report layer: the papers' reported numbers and claims (YAML data), one page per paper, paper-vs-reproduced
tables paired on every key a paper row declares, and seaborn figures."""

from snnrobust.report.claims import validate_claims
from snnrobust.report.page import validate_report_section
from snnrobust.report.paper_values import list_slots, list_tables, load_paper_values, parse_eps

__all__ = ["list_slots", "list_tables", "load_paper_values", "parse_eps", "validate_claims", "validate_report_section"]
