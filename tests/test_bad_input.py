"""Bad input never costs a result: malformed options, data files, checkpoints, configs and command lines.

Every case runs the CLI (in-process, exactly as ``python -m snnrobust`` does) and asserts the promise:
one line on stderr naming the problem, exit status 2, no new file, and every previously finished
output (prepared data, trained model, and the case's own output path) byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, SMALL_SNN_SPEC
from snnrobust.cli import main

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
FINISHED = b"finished result of an earlier run\n"


# ---------------------------------------------------------------- helpers that build bad inputs

def _npz_folder(root: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """An offline ``npz`` source folder with the same split as train and test (no SHA256SUMS needed)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("train.npz", "test.npz"):
        np.savez(root / name, x=x, y=y)
    return root


def _pixels(shape=(8, 8, 8, 3), dtype=np.uint8) -> np.ndarray:
    return (np.arange(np.prod(shape)) % 200).reshape(shape).astype(dtype)


def _labels(n=8) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % 2


def _prepared(path: Path, **override) -> Path:
    """A prepared image file, valid unless ``override`` replaces an array or the meta."""
    arrays = {"x_train": np.zeros((4, 3, 8, 8), np.uint8), "y_train": np.array([0, 1, 0, 1]),
              "x_test": np.zeros((2, 3, 8, 8), np.uint8), "y_test": np.array([0, 1])}
    meta = {"kind": "image", "num_classes": 2, "in_shape": [3, 8, 8], "mean": [0.5] * 3, "std": [0.2] * 3}
    meta.update(override.pop("meta", {}))
    arrays.update(override)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def _config(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


def _default_config_with(tmp: Path, edit) -> Path:
    """config/default.yaml with one value changed by ``edit(text) -> text``."""
    return _config(tmp, edit((REPO / "config/default.yaml").read_text()))


def _set_yaml(path: list, value):
    """An edit that sets ``path`` in the YAML tree of config/default.yaml (dumped back strictly)."""
    import yaml

    def edit(text: str) -> str:
        cfg = yaml.safe_load(text)
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return yaml.safe_dump(cfg, sort_keys=False)

    return edit


# ---------------------------------------------------------------- the cases: (id, argv builder, needle)
# An argv builder gets (ctx) with ctx.tmp, ctx.data, ctx.model, ctx.out(name): a path that holds FINISHED.

def prepare(spec: dict | str, source="digits"):
    text = spec if isinstance(spec, str) else json.dumps(spec)
    return lambda c: ["prepare", "--source", source, "--spec", text, "--out", c.out("data.npz")]


def prepare_npz(x, y, needle_opts=None):
    def argv(c):
        root = _npz_folder(c.tmp / "raw", x, y)
        spec = {"root": str(root), "verify": False, **(needle_opts or {})}
        return ["prepare", "--source", "npz", "--spec", json.dumps(spec), "--out", c.out("data.npz")]

    return argv


def train(patch: dict | None = None, data=None, out_model=None):
    def argv(c):
        spec = json.loads(json.dumps(SMALL_SNN_SPEC))
        for key, value in (patch or {}).items():
            spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
        return ["train", "--data", data(c) if data else str(c.data), "--spec", json.dumps(spec),
                "--out-model", out_model(c) if out_model else c.out("model.pt"),
                "--out-metrics", c.out("metrics.csv"), "--out-run", c.out("run.json"),
                "--checkpoint", str(c.tmp / "ckpt" / "last.pt"), "--no-progress"]

    return argv


def attack(spec: dict | str, model=None, data=None, source=None):
    def argv(c):
        text = spec if isinstance(spec, str) else json.dumps({"n_eval": 32, "batch_size": 32, **spec})
        return ["attack", "--model", model(c) if model else str(c.model), "--data", data(c) if data else str(c.data),
                "--spec", text, "--out", c.out("attack.json"), "--no-progress",
                *(["--source-model", source(c)] if source else [])]

    return argv


def validate(text_or_edit):
    def argv(c):
        path = (_default_config_with(c.tmp, text_or_edit) if callable(text_or_edit)
                else _config(c.tmp, text_or_edit))
        return ["validate-config", "--config", str(path), "--schema", SCHEMA]

    return argv


def _torch_file(c, obj) -> str:
    path = c.tmp / "not_a_model.pt"
    torch.save(obj, path)
    return str(path)


def _truncated_copy(src: Path, dest: Path, keep: int = 4000) -> str:
    dest.write_bytes(src.read_bytes()[:keep])
    return str(dest)


def _truncated(c) -> str:
    return _truncated_copy(c.model, c.tmp / "truncated.pt")


def _edited_model(*edits):
    """A copy of the trained SNN's model file with each ``edit(state)`` applied in turn."""
    def path(c) -> str:
        state = torch.load(c.model, weights_only=True)
        for edit in edits:
            edit(state)
        out = c.tmp / "edited_model.pt"
        torch.save(state, out)
        return str(out)

    return path


def _ann_weights(state) -> None:
    """An ANN's weights under the SNN's metadata: the tensor shapes match, so they would load."""
    from snnrobust.models import build_model

    snn = json.loads(state["model_spec"])["options"]
    torch.manual_seed(0)
    ann = build_model("ann_vgg_tiny", num_classes=state["num_classes"], in_shape=tuple(state["in_shape"]), width=1.0,
                      mean=snn["mean"], std=snn["std"])
    assert {k: v.shape for k, v in ann.state_dict().items()} == {k: v.shape for k, v in state["state_dict"].items()}
    state["state_dict"] = ann.state_dict()


def _rehash(state) -> None:
    """Recompute the content hash, as a writer that saved the wrong weights would have."""
    from snnrobust.commands.models_io import HASH_KEY, content_hash

    state[HASH_KEY] = content_hash(state)


def _no_hash(state) -> None:
    from snnrobust.commands.models_io import HASH_KEY

    del state[HASH_KEY]


def _offline_dvs(c) -> list[str]:
    """CIFAR10-DVS from a mirror nobody listens on (a loopback port just closed): the download fails."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = {"root": str(c.tmp / "raw" / "cifar10_dvs"), "mirror": f"http://127.0.0.1:{port}"}
    return ["prepare", "--source", "cifar10_dvs", "--spec", json.dumps(spec), "--out", c.out("dvs.npz")]


FGSM = {"attack": {"name": "fgsm"}, "eps": 8 / 255}
PGD = {"attack": {"name": "pgd", "options": {"steps": 2}}, "eps": 8 / 255}

CASES = [
    # -- option values of registered components (wrong type, NaN, range), names too
    ("unknown-source", prepare({}, source="mnist9"), "unknown data source 'mnist9'"),
    ("unknown-data-option", prepare({"colour": 1}), "unknown option 'colour'"),
    ("string-for-int", prepare({"n_train": "100"}), "'n_train' of data source 'digits' must be an integer"),
    ("bool-for-int", prepare({"n_train": True}), "got True"),
    ("float-for-int", prepare({"image_size": 16.5}), "'image_size'"),
    ("zero-image-size", prepare({"image_size": 0}), "must be >= 1, got 0"),
    ("fraction-out-of-range", prepare({"test_fraction": 1.5}), "must be > 0 and < 1, got 1.5"),
    ("negative-seed", prepare({"subset_seed": -1}), "'subset_seed'"),
    ("nan-in-spec", prepare('{"test_fraction": NaN}'), "NaN"),
    ("nan-names-its-key", prepare('{"test_fraction": NaN}'), "--spec test_fraction is NaN"),
    ("nan-train-lr", train({"train": {"lr": float("nan")}}), "--spec train.lr is NaN"),
    ("nan-n-eval", attack({**FGSM, "n_eval": float("nan")}), "--spec n_eval is NaN"),
    ("infinite-eps", attack({**FGSM, "eps": float("inf")}), "--spec eps is Infinity"),
    ("nan-nested-attack-option",
     attack({**PGD, "attack": {"name": "pgd", "options": {"steps": 2, "alpha": float("nan")}}}),
     "--spec attack.options.alpha is NaN"),
    ("infinity-in-spec", prepare('{"test_fraction": Infinity}'), "Infinity"),
    ("n-train-larger-than-data", prepare({"n_train": 100000}), "n_train=100000"),
    ("npz-without-root", prepare({}, source="npz"), "needs option 'root'"),
    ("npz-bad-layout-name", prepare({"root": "x", "layout": "HWC"}, source="npz"), "one of 'NHWC', 'NCHW'"),
    ("unknown-arch", train({"model": {"arch": "snn_vgg99"}}), "unknown arch 'snn_vgg99'"),
    ("unknown-model-option", train({"model": {"options": {"TT": 3}}}), "TT"),
    ("model-T-zero", train({"model": {"options": {"T": 0}}}), "T"),
    ("model-T-string", train({"model": {"options": {"T": "4"}}}), "'4'"),
    ("model-width-negative", train({"model": {"options": {"width": -1.0}}}), "width"),
    ("unknown-method", train({"method": {"name": "magic"}}), "magic"),
    ("method-option-string", train({"method": {"name": "vanilla", "options": {"label_smoothing": "0.1"}}}),
     "label_smoothing"),
    ("epochs-zero", train({"train": {"epochs": 0}}), "epochs"),
    ("lr-string", train({"train": {"lr": "1e-3"}}), "lr"),
    ("train-seed-negative", train({"train": {"seed": -1}}), "seed"),
    ("unknown-training-option", train({"train": {"optimiser": "sgd"}}), "optimiser"),
    ("eps-as-fraction-string", attack({**FGSM, "eps": "8/255"}), "8/255"),
    ("eps-negative", attack({**FGSM, "eps": -0.01}), "eps"),
    ("eps-nan", attack('{"attack": {"name": "fgsm"}, "eps": NaN}'), "NaN"),
    ("unknown-attack", attack({**FGSM, "attack": {"name": "deepfool9"}}), "deepfool9"),
    ("unknown-attack-option", attack({**PGD, "attack": {"name": "pgd", "options": {"stepz": 3}}}), "stepz"),
    ("attack-steps-zero", attack({**PGD, "attack": {"name": "pgd", "options": {"steps": 0}}}), "steps"),
    ("attack-steps-string", attack({**PGD, "attack": {"name": "pgd", "options": {"steps": "10"}}}), "'10'"),
    ("attack-alpha-negative", attack({**PGD, "attack": {"name": "pgd", "options": {"steps": 2, "alpha": -0.1}}}),
     "alpha"),
    ("n-eval-larger-than-test-split", attack({**FGSM, "n_eval": 100000}), "100000"),
    # -- data checked where it enters: layout, dtype, value range, labels
    ("npz-float-pixels", prepare_npz(_pixels(dtype=np.float32) / 255, _labels()), "uint8"),
    ("npz-nchw-declared-nhwc", prepare_npz(_pixels((8, 3, 8, 8)), _labels()), "layout 'NCHW'"),
    ("npz-nhwc-declared-nchw", prepare_npz(_pixels(), _labels(), {"layout": "NCHW"}), "layout 'NHWC'"),
    ("npz-labels-2d", prepare_npz(_pixels(), _labels()[:, None]), "1-D"),
    ("npz-float-labels", prepare_npz(_pixels(), _labels().astype(np.float32)), "integer"),
    ("npz-labels-beyond-classes", prepare_npz(_pixels(), _labels() * 3, {"num_classes": 2}), "outside 0..1"),
    ("npz-negative-labels", prepare_npz(_pixels(), _labels() - 1), "outside"),
    ("npz-label-count", prepare_npz(_pixels(), _labels(5)), "5"),
    ("prepared-missing", train(data=lambda c: str(c.tmp / "absent.npz")), "prepared data not found"),
    ("prepared-truncated", train(data=lambda c: _truncated_copy(c.data, c.tmp / "t.npz")), "corrupt"),
    ("prepared-hwc-pixels", train(data=lambda c: str(_prepared(c.tmp / "p.npz", x_train=np.zeros((4, 8, 8, 3),
                                                                                          np.uint8)))), "(N, C, H, W)"),
    ("prepared-float-pixels", train(data=lambda c: str(_prepared(c.tmp / "p.npz", x_train=np.zeros((4, 3, 8, 8),
                                                                                            np.float32)))), "x_train"),
    ("prepared-label-out-of-range", train(data=lambda c: str(_prepared(c.tmp / "p.npz", y_test=np.array([0, 7])))),
     "outside 0..1"),
    ("prepared-in-shape-mismatch", train(data=lambda c: str(_prepared(c.tmp / "p.npz", meta={"in_shape": [3, 4, 4]}))),
     "in_shape"),
    ("prepared-no-classes", train(data=lambda c: str(_prepared(c.tmp / "p.npz", meta={"num_classes": 0}))),
     "num_classes"),
    # -- checkpoints
    ("model-missing", attack(FGSM, model=lambda c: str(c.tmp / "absent.pt")), "not found"),
    ("model-truncated", attack(FGSM, model=_truncated), "corrupt or truncated"),
    ("model-not-snnrobust", attack(FGSM, model=lambda c: _torch_file(c, {"weights": torch.zeros(2)})), "not_a_model.pt"),
    # -- a model file is what its metadata says: content hash, clean accuracy, labels
    ("model-weights-of-another-model", attack(FGSM, model=_edited_model(_ann_weights)),
     "edited_model.pt does not match its content hash"),
    ("model-without-content-hash", attack(FGSM, model=_edited_model(_no_hash)),
     "edited_model.pt records no content hash"),
    ("model-clean-accuracy-far-below-recorded", attack(FGSM, model=_edited_model(_ann_weights, _rehash)),
     "points below the"),
    ("labels-name-another-model", attack({**FGSM, "labels": {"model": "ann_vgg_tiny"}}),
     "was trained as model='snn_vgg_tiny', but the spec labels say model='ann_vgg_tiny'"),
    ("source-labels-name-another-model", attack({**FGSM, "source_labels": {"model": "ann_vgg_tiny"}},
                                                source=lambda c: str(c.model)), "the spec's source_labels say"),
    # -- a failed download leaves nothing behind (no empty raw/download/ folder)
    ("dvs-download-offline", _offline_dvs, "download failed"),
    # -- command lines and output folders
    ("spec-not-json", prepare("{nope"), "not valid JSON"),
    ("spec-not-object", prepare("[1, 2]"), "JSON object"),
    ("missing-argument", lambda c: ["prepare", "--source", "digits"], "--out"),
    ("unknown-verb", lambda c: ["trian"], "trian"),
    ("output-folder-is-a-file", lambda c: ["prepare", "--source", "digits", "--out", c.out("data.npz") + "/x.npz"],
     "is not a folder"),
    ("model-output-folder-is-a-file", train(out_model=lambda c: c.out("model.pt") + "/m.pt"), "is not a folder"),
    # -- configs: pitfalls (empty, {}, duplicates, unknown keys) and values checked at parse time
    ("config-empty", validate(""), "empty"),
    ("config-empty-mapping", validate("{}\n"), "empty"),
    ("config-duplicate-key", validate(lambda t: t + "\nscale: default\n"), "duplicate key 'scale'"),
    ("config-unknown-top-level", validate(lambda t: t + "\nepochz: 3\n"), "epochz"),
    ("config-not-yaml", validate("a: [1\n"), "not valid YAML"),
    ("config-eps-string", validate(_set_yaml(["evaluation", "n_eval"], "256")), "n_eval"),
    ("config-data-option-value", validate(_set_yaml(["datasets", "digits", "options"], {"image_size": -3})),
     "image_size"),
    ("config-model-option-value", validate(_set_yaml(["models", "snn_vgg_tiny", "options"], {"T": 0})), "T"),
    ("config-model-option-nan", validate(_set_yaml(["models", "snn_vgg_tiny", "options"], {"width": float("nan")})),
     "width"),
    ("config-attack-steps-zero", validate(_set_yaml(["attacks", "pgd10", "options"], {"steps": 0})), "steps"),
    ("config-n-eval-beyond-test-split", validate(_set_yaml(["evaluation", "n_eval"], 100000)), "n_eval"),
    ("config-names-no-scale", validate(lambda t: t.replace("\nscale: default\n", "\n", 1)), "names no scale"),
]


class Ctx:
    """One case's world: a private folder whose output paths already hold finished results; the trained
    model (a session fixture) is built only for the cases that use it."""

    def __init__(self, tmp: Path, data: Path, request):
        self.tmp, self.data, self._request = tmp, data, request
        self.outputs = tmp / "results"
        self.outputs.mkdir()
        self.finished = [tmp, data.parent]

    @property
    def model(self) -> Path:
        folder = self._request.getfixturevalue("trained_snn")
        if folder not in self.finished:
            self.finished.append(folder)
        return folder / "model.pt"

    def out(self, name: str) -> str:
        path = self.outputs / name
        path.write_bytes(FINISHED)
        return str(path)


def _snapshot(*folders: Path) -> dict[str, str]:
    """Path → sha256 of every file below ``folders`` (hidden temporaries included), and every folder (a
    failed command leaves no empty folder behind either)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for folder in folders for p in sorted(folder.rglob("*"))}


def test_at_least_forty_cases_cover_every_class():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_costs_nothing(argv, needle, tmp_path, digits_npz, request, capsys):
    ctx = Ctx(tmp_path, digits_npz, request)
    args = argv(ctx)
    before = _snapshot(*ctx.finished)
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}: {err}"
    assert "\n" not in err and err.startswith("snnrobust: error:") and needle in err, err
    assert _snapshot(*ctx.finished) == before  # nothing new, nothing changed


# ---------------------------------------------------------------- the Snakefile speaks first where it can
# Snakemake reads each --configfile itself before our Snakefile runs (an empty file, a list or a YAML syntax
# error is its own WorkflowError then); a file it accepts is checked by us, in one line naming the file.

SNAKEFILE_CASES = [
    ("names-no-scale", lambda t: t.replace("\nscale: default\n", "\n", 1), "config config/test.yaml names no scale"),
    ("empty-mapping", lambda t: "{}\n", "config config/test.yaml is an empty mapping"),
    ("duplicate-key", lambda t: t + "\nscale: default\n", "config config/test.yaml: duplicate key 'scale'"),
]


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    from test_workflow import copy_workflow

    return copy_workflow(tmp_path_factory.mktemp("wf"))


@pytest.mark.parametrize("edit, needle", [c[1:] for c in SNAKEFILE_CASES], ids=[c[0] for c in SNAKEFILE_CASES])
def test_bad_config_file_stops_snakemake_in_one_line_naming_it(edit, needle, workflow_copy):
    from test_workflow import snakemake

    (workflow_copy / "config/test.yaml").write_text(edit((REPO / "config/default.yaml").read_text()))
    proc = snakemake("-n", "sr", "--configfile", "config/test.yaml", cwd=workflow_copy, check=False)
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if line.startswith("snnrobust: error:")]
    assert proc.returncode != 0 and len(errors) == 1 and needle in errors[0], out[-3000:]
    assert "Traceback" not in out and "WorkflowError" not in out
    assert not (workflow_copy / "results").exists() and not (workflow_copy / "data").exists()
