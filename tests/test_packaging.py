"""Packaging: the conda env for cluster users pins exactly what pyproject.toml pins."""

import tomllib

import yaml

from conftest import REPO


def _pins(lines):
    return {name.lower(): version for name, version in (line.split("==") for line in lines if "==" in line)}


def test_conda_env_mirrors_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "envs/snnrobust.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip) == wanted
    assert "torch" in wanted and wanted["torch"] == "2.14.1" and wanted["torchvision"] == "0.29.1"
