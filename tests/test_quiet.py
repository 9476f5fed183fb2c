"""Library warnings stay off stderr where our processes start; our own warnings still show (issue 19)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from snnrobust.quiet import silence_library_warnings


class FakeCryptographyDeprecationWarning(UserWarning):
    """cryptography's own class derives from UserWarning, not DeprecationWarning."""


def _shown(category, module: str) -> bool:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # as PYTHONWARNINGS=always would: everything shows...
        silence_library_warnings()  # ...except library notices
        warnings.warn_explicit("DSA is deprecated", category, filename=f"{module}.py", lineno=1, module=module)
    return bool(seen)


@pytest.mark.parametrize("module", ["asyncssh.crypto.misc", "dvc.repo", "snakemake", "torch.nn.modules.module",
                                    "torch_geometric.typing"])
@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning, FakeCryptographyDeprecationWarning])
def test_library_notices_are_hidden(module, category):
    assert not _shown(category, module)


@pytest.mark.parametrize("module", ["snnrobust.attacks.pgd", "__main__", "torchy", "my_dvc", "asyncsshx.mod"])
def test_our_own_and_lookalike_modules_still_warn(module):
    assert _shown(DeprecationWarning, module)


def test_runtime_warnings_of_libraries_still_show():
    # a RuntimeWarning (overflow, mean of empty slice) can mean a wrong number: never hidden
    assert _shown(RuntimeWarning, "numpy.core")


def test_env_switch_turns_the_filter_off(monkeypatch):
    monkeypatch.setenv("SNNROBUST_WARNINGS", "all")
    assert _shown(DeprecationWarning, "asyncssh.crypto.misc")


def test_real_asyncssh_import_is_silent_even_when_warnings_are_errors():
    """asyncssh warns at import under cryptography >= 45 (DSA): the filter holds with -W error."""
    code = ("from snnrobust.quiet import silence_library_warnings; silence_library_warnings(); "
            "import asyncssh, warnings; warnings.warn('ours', DeprecationWarning)")
    proc = subprocess.run([sys.executable, "-W", "error::UserWarning", "-W", "always::DeprecationWarning", "-c", code],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "DSA" not in proc.stderr and "CryptographyDeprecationWarning" not in proc.stderr
    assert "DeprecationWarning: ours" in proc.stderr  # our own still shows
