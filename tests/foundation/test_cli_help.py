"""Every option of every subcommand says what it does in ``--help``; the entry points work."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import capbench
from capbench.cli import _PASSTHROUGH, COMMANDS, build_parser


def _walk(parser: argparse.ArgumentParser, prefix: str):
    """(command path, action) for every argument of ``parser`` and of its subparsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, f"{prefix} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield prefix, action


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for verb in COMMANDS:
        if verb in _PASSTHROUGH:  # LightningCLI writes its own help
            continue
        parser = build_parser(load=verb)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        out.append((f"capbench {verb}", sub.choices[verb]))
    from capbench.data.scenes import cli as scenes_cli  # `data scenes` parses its own options

    scenes = argparse.ArgumentParser(prog="capbench data scenes")
    scenes_cli.add_arguments(scenes)
    out.append(("capbench data scenes", scenes))
    out.append(("capbench", build_parser()))
    return out


@pytest.mark.parametrize(("name", "parser"), [pytest.param(*np, id=np[0]) for np in _all_parsers()])
def test_every_option_has_help(name, parser):
    missing = [
        f"{where}: {'/'.join(action.option_strings) or action.dest}"
        for where, action in _walk(parser, name)
        if action.help != argparse.SUPPRESS
        and not (action.help or "").strip()
        and action.dest != "rest"  # `data scenes` hands its tokens to the parser tested above
    ]
    assert not missing, "options without help:\n" + "\n".join(missing)


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"capbench {capbench.__version__}"


def test_python_dash_m_capbench_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "capbench", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"capbench {capbench.__version__}"
    proc = subprocess.run([sys.executable, "-m", "capbench", "reproduce", "--help"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--backbone-weights" in proc.stdout
