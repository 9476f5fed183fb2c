"""What each CLI verb does: read inputs, call the library, write tidy outputs atomically (one module per verb)."""

from snnrobust.commands.analyze import analyze
from snnrobust.commands.attack import attack
from snnrobust.commands.models_io import build_from_spec, load_trained
from snnrobust.commands.prepare import prepare
from snnrobust.commands.report import figure, read_rows, table
from snnrobust.commands.train import train

__all__ = ["analyze", "attack", "build_from_spec", "load_trained", "prepare", "figure", "read_rows", "table", "train"]
