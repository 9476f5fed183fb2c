"""What each CLI verb does: read inputs, call the library, write tidy outputs atomically (one module per verb).

Names load on first use (PEP 562): a verb pays only for its own imports, so `table`, `figure` and the report
verbs start without torch, and only graph jobs load torch_geometric (start-up is most of a tiny job).
Callers that run verbs (the CLI) import from the submodule (``snnrobust.commands.attack.attack``): once a
submodule is imported, Python binds the package attribute of the same name to the module, not the function.
"""

from importlib import import_module

#: public name → the module of this package that defines it
_WHERE = {
    "analyze": "analyze", "attack": "attack", "build_from_spec": "models_io", "load_trained": "models_io",
    "prepare": "prepare", "figure": "report", "read_rows": "report", "table": "report", "train": "train",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
