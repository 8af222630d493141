"""Every registered method, tested the moment it registers: its config, its LightningCLI fields,
a few training steps on the tiny scenes data, and an exact resume after an interruption."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from capbench.methods.config import build_config
from capbench.methods.protocol import method_sections
from capbench.methods.registry import discover_methods, get_method

METHODS = list(discover_methods())


class Killed(Exception):
    """Raised by :class:`Interrupt` (Lightning turns KeyboardInterrupt into a graceful stop)."""


class Interrupt(L.Callback):
    """Stops a run with an exception after ``step`` optimizer steps, as a kill would: nothing
    is saved on the way out."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise Killed(f"interrupted at step {trainer.global_step}")


def _smoke(name: str, scenes: Path):
    spec = get_method(name)
    smoke = spec.load("smoke")
    cfg = build_config(spec.load("config"), smoke["config"], f"{name} smoke config")
    data = dict(smoke["data"])
    data["root"] = str(scenes / data["root"])

    def fit(workdir: Path, callbacks=()):
        dm = spec.load("datamodule")(cfg, data)
        return spec.load("fit")(
            cfg, dm, workdir, seed=0, accelerator="cpu", devices=1, progress=False,
            callbacks=callbacks,
        )  # fmt: skip

    return spec, cfg, fit


def test_semantic_retrieval_is_registered():
    assert "semantic_retrieval" in METHODS
    spec = get_method("semantic_retrieval")
    assert spec.paper == "gordo2017"
    with pytest.raises(KeyError, match=r"registered: .*semantic_retrieval"):
        get_method("no_such_method")


@pytest.mark.parametrize("name", METHODS)
def test_default_config_is_complete_and_typed(name):
    """Every field has a default (the paper's value) and a typo is an error naming it."""
    spec = get_method(name)
    cls = spec.load("config")
    cfg = cls()
    sections = [f.name for f in dataclasses.fields(cfg)]
    assert sections
    with pytest.raises(ValueError, match="unknown key"):
        build_config(cls, {sections[0]: {"no_such_field": 1}}, "test")


@pytest.mark.parametrize("name", METHODS)
def test_row_config_reads_a_row_and_refuses_a_typo_naming_it(name):
    """``row_config`` is what ``capbench reproduce`` runs on every row config when it plans: it
    reads the method's sections of a row and refuses a key its typed row does not have."""
    from capbench.bench.catalog import Catalog
    from capbench.bench.config import resolve_config

    read = get_method(name).load("row_config")
    configs = [
        cfg
        for ref in Catalog.discover().rows(get_method(name).paper, None, None)
        if "scenes" in ref.row.configs
        for cfg in [resolve_config(ref.row.configs["scenes"])]
        if cfg.get("method") == name
    ]
    assert configs, f"no shipped scenes row of {name}"
    assert dataclasses.is_dataclass(read(configs[0]))
    section = next(k for k, v in method_sections(configs[0]).items() if isinstance(v, dict))
    typo = {**configs[0], section: {**configs[0][section], "no_such_field": 1}}
    with pytest.raises(ValueError, match=rf"{section}: unknown key\(s\) no_such_field"):
        read(typo)


@pytest.mark.parametrize("name", METHODS)
def test_lightning_cli_prints_the_config_fields(name, capsys):
    """``capbench fit --model NAME --print_config`` shows each section of the typed config with
    every one of its fields and the same defaults: one place holds a default."""
    from capbench.commands.lightning import main
    from capbench.methods.config import config_dict

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", name, "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["model"]
    defaults = config_dict(get_method(name).load("config")())
    for section, values in defaults.items():
        if isinstance(values, dict) and values:
            assert printed[section] == values, section


@pytest.mark.parametrize("name", METHODS)
def test_a_printed_config_loads_again(name, capsys, tmp_path):
    """``capbench fit --model NAME --print_config > cfg.yaml`` then ``--config cfg.yaml``: the
    file parses back to the same config (LightningCLI saves the same file beside every fit)."""
    from capbench.commands.lightning import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", name, "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "Unable to serialize" not in printed
    path = tmp_path / "cfg.yaml"
    path.write_text(printed)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", name, "--config", str(path), "--print_config"])
    assert exit_info.value.code == 0
    again = yaml.safe_load(capsys.readouterr().out)
    assert again == yaml.safe_load(printed)
    assert again["trainer"]["plugins"] == [
        {"class_path": "capbench.methods.checkpoint_io.AtomicCheckpointIO"}
    ]


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("form", ["--model.seed=5", "--data.seed=5"])
def test_a_linked_option_names_the_one_to_give(name, form, capsys):
    """The method's config sets the DataModule's seed (and the Trainer's epochs): giving the
    linked target stops with one line naming its source, instead of jsonargparse's whole
    usage and "argument model.seed --> data.seed: invalid ... value"."""
    from capbench.commands.lightning import main

    if form.startswith("--model."):  # the source itself is accepted
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--model", name, form, "--print_config"])
        assert exit_info.value.code == 0
        assert yaml.safe_load(capsys.readouterr().out)["model"]["seed"] == 5
        return
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", name, *form.split("=")])
    assert exit_info.value.code == (
        "capbench fit: --data.seed is set from --model.seed (the method's config, whose "
        "defaults are the paper's): give --model.seed instead"
    )
    assert "usage:" not in capsys.readouterr().err


@pytest.mark.parametrize("name", METHODS)
def test_a_linked_key_in_a_config_file_is_refused_not_dropped(name, tmp_path, capsys):
    """``data: {seed: 5}`` in a ``--config`` file was dropped without a word (the link sets it
    from ``model.seed``); a printed config, which leaves link targets out, still loads."""
    from capbench.commands.lightning import main

    cfg = tmp_path / "mine.yaml"
    cfg.write_text("data:\n  seed: 5\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", name, "--config", str(cfg)])
    assert exit_info.value.code == (
        f"capbench fit: data.seed in {cfg} is set from --model.seed (the method's config, whose "
        f"defaults are the paper's): set model.seed in {cfg} instead"
    )


@pytest.mark.parametrize("name", METHODS)
def test_fit_on_a_missing_data_root_says_so_in_one_line(name, tmp_path, capsys, monkeypatch):
    """The user's path, not a bug: one line naming it, no traceback."""
    from capbench.commands.lightning import main

    monkeypatch.chdir(tmp_path)  # the Trainer is built first: its logger folder goes here

    root = tmp_path / "not_here"
    argv = ["fit", "--model", name, "--data.root", str(root)]
    if name in ("quantized_embedding", "semantic_retrieval"):  # else: no ImageNet weights given
        argv += ["--model.model.allow_random_init", "true"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("capbench fit: error: ") and str(root) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(
    ("given", "seeded"),
    [([], 0), (["--model.seed", "7"], 7), (["--model.seed", "7", "--seed_everything", "4"], 4)],
)
def test_fit_seeds_the_run_with_the_methods_seed(name, given, seeded, tmp_path, monkeypatch):
    """LightningCLI seeded every run with 0 (its ``seed_everything: true``, with a "No seed
    found" warning): ``--model.seed 7`` changed the data order but not the initial weights."""
    from capbench.commands.lightning import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PL_GLOBAL_SEED", "-1")  # seed_everything writes it; restored after
    argv = ["fit", "--model", name, "--data.root", str(tmp_path / "not_here"), *given]
    if name in ("quantized_embedding", "semantic_retrieval"):
        argv += ["--model.model.allow_random_init", "true"]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="No seed found")
        assert main(argv) == 1  # the seed is set before the data is read
    assert os.environ["PL_GLOBAL_SEED"] == str(seeded)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(("verb", "step"), [("validate", "validation_step"), ("test", "test_step")])
def test_validate_and_test_say_how_a_method_is_evaluated(name, verb, step, capsys):
    """No registered method has a validation or test step (its rows evaluate it with the
    paper's protocol): the verbs said so in a MisconfigurationException traceback."""
    from capbench.commands.lightning import main

    assert main([verb, "--model", name]) == 2
    err = capsys.readouterr().err
    assert f"capbench {verb}: the {name} method has no {step}" in err
    assert f"capbench reproduce {get_method(name).paper} --rows ROW" in err


def test_fit_without_imagenet_weights_says_how_to_give_them(tmp_path, capsys, monkeypatch):
    from capbench.commands.lightning import main

    monkeypatch.chdir(tmp_path)

    assert main(["fit", "--model", "semantic_retrieval", "--data.root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "capbench fit: error: model.backbone_weights is not set" in err
    assert "--model.model.backbone_weights PATH" in err and "Traceback" not in err


@pytest.mark.parametrize("name", METHODS)
def test_trains_and_resumes_exactly_after_an_interruption(name, tiny_scenes, tmp_path):
    """A few steps from the smoke config; a run interrupted mid-epoch and started again ends
    with exactly the weights of an uninterrupted run."""
    _, _, fit = _smoke(name, tiny_scenes)
    _, ckpt = fit(tmp_path / "straight")
    straight = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert straight["global_step"] >= 3

    stop = straight["global_step"] // 2 + 1
    with pytest.raises(Killed):
        fit(tmp_path / "resumed", callbacks=[Interrupt(stop)])
    interrupted = torch.load(
        tmp_path / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert 0 < interrupted["global_step"] < straight["global_step"]  # it did stop mid-run
    _, ckpt2 = fit(tmp_path / "resumed")
    resumed = torch.load(ckpt2, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == straight["global_step"]
    for finished in (ckpt, ckpt2):  # a finished fit keeps its last checkpoint alone
        assert [p.name for p in finished.parent.glob("*.ckpt")] == ["last.ckpt"]
    for key, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0, msg=key)


def test_methods_verb_lists_every_registered_method(capsys):
    from capbench.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        assert f"{name}  (benchmarks/{get_method(name).paper})" in out
    assert main(["methods", "--json"]) == 0
    import json

    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["name"] for d in docs] == METHODS
    assert docs[METHODS.index("semantic_retrieval")]["rows"].endswith("rows:run_row")
