"""Third-party warnings kept off the user's stderr, where our processes start.

Deprecation and similar notices from the libraries we call (asyncssh under a newer cryptography, dvc,
snakemake, torch, ...) are not errors and must not surround our one-line ``snnrobust: error:``. The filter
matches by category *and* by the module a warning is attributed to, so warnings raised by snnrobust's own
code (or by a user's) still show; ``SNNROBUST_WARNINGS=all`` turns the filter off for debugging.
"""

from __future__ import annotations

import os
import warnings

#: Top-level packages whose warnings are library noise to a user of the pipeline.
LIBRARIES = (
    "asyncssh", "cryptography", "paramiko", "bcrypt", "dvc", "dvc_data", "dvc_objects", "dvc_ssh", "dvc_http",
    "dvc_task", "dvc_render", "dvc_studio_client", "scmrepo", "pygit2", "dulwich", "git", "fsspec", "sshfs",
    "celery", "kombu", "snakemake", "snakemake_interface_common", "snakemake_interface_executor_plugins",
    "snakemake_interface_storage_plugins", "snakemake_interface_report_plugins", "snakemake_executor_plugin_slurm",
    "torch", "torchvision", "torchaudio", "torch_geometric", "spikingjelly", "torchattacks", "numpy", "pandas",
    "matplotlib", "seaborn", "sklearn", "scipy", "networkx", "pydantic", "jsonschema", "yaml", "PIL", "tqdm",
    "pulp", "pkg_resources", "setuptools", "importlib._bootstrap", "importlib._bootstrap_external",
)
#: The kinds of notice a library may print without anything being wrong in the user's run.
CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning, ImportWarning)
#: Regex for `warnings.filterwarnings(module=...)`, which anchors only at the start: add the end ourselves.
MODULE_PATTERN = r"(?:%s)(?:\..*)?\Z" % "|".join(name.replace(".", r"\.") for name in LIBRARIES)


def silence_library_warnings() -> None:
    """Ignore CATEGORIES attributed to LIBRARIES' modules; every other warning keeps its normal treatment.

    The filters go in front of any inherited from ``-W``/PYTHONWARNINGS, so a library notice never becomes
    an error or a line on stderr, while a warning from snnrobust still follows those options.
    """
    if os.environ.get("SNNROBUST_WARNINGS", "") == "all":
        return
    for category in CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=MODULE_PATTERN)
