"""constraints.txt: the versions the golden numbers were made with. It pins every requirement of
capbench and its dev extras, keeps the Makefile's torch pins per machine, and a record made
with other versions is named by `leaderboard check`."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from capbench.bench import constraints

REPO = Path(__file__).resolve().parents[2]


def test_committed_file_pins_every_requirement_of_make_setup():
    pins = constraints.pinned(REPO / "constraints.txt")
    wanted = constraints.project_requirements()
    names = {canonicalize_name(Requirement(r).name) for r in wanted} - {"capbench"}
    assert names and not names - set(pins), f"not pinned: {sorted(names - set(pins))}"


def test_committed_file_keeps_the_makefile_torch_pins():
    makefile = (REPO / "Makefile").read_text()
    text = (REPO / "constraints.txt").read_text()
    for machine in ("x86_64", "aarch64"):
        (pins,) = re.findall(rf"^TORCH_PINS_{machine} := (.+)$", makefile, re.MULTILINE)
        for pin in pins.split():
            assert f'{pin}; platform_machine == "{machine}"' in text.splitlines()


def test_pins_apply_per_machine_and_render_round_trips(tmp_path):
    text = constraints.render(
        {"pyyaml": "6.0.4", "nvidia-cublas": "13.1", "faiss-cpu": "1.15.1", "capbench": "0.1"},
        {"x86_64": ["torch==2.14.1"], "no-such-machine": ["torch==1.0"]},
    )
    path = tmp_path / "c.txt"
    path.write_text(text)
    pins = constraints.pinned(path)
    here_x86 = metadata.version("torch") and __import__("platform").machine() == "x86_64"
    assert pins["pyyaml"] == "6.0.4" and "capbench" not in pins
    assert "torch==1.0" in text and pins.get("torch") != "1.0"  # another machine's pin
    if here_x86:
        assert pins["torch"] == "2.14.1" and pins["nvidia-cublas"] == "13.1"
        assert pins["faiss-gpu"] == "1.15.1"  # same release as faiss-cpu: same faiss/ files


def test_closure_follows_requirements_and_their_extras():
    found = constraints.installed_closure(["pyyaml", "lightning"])
    assert found["pyyaml"] == metadata.version("pyyaml")
    assert {"torch", "torchmetrics", "lightning-utilities"} <= set(found)
    assert "wandb" not in found  # only an extra of lightning, not asked for


def test_drift_names_the_moved_package():
    pins = {"numpy": "0.0.1", "scipy": metadata.version("scipy")}
    packages = {"numpy": "2.0", "scipy": metadata.version("scipy"), "faiss-gpu": None}
    assert constraints.drift(packages, pins) == ["numpy 2.0 (pinned 0.0.1)"]
