"""The one command: `mnistbench` alone says what to run first, every subcommand answers --help
with its defaults, and the console script and `python -m mnistbench` are the same command."""

import argparse
import importlib
import shutil
import subprocess
import sys

import pytest

from mnistbench import cli


def test_mnistbench_alone_prints_the_two_commands_to_run_first_and_every_subcommand(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert 'pytest benchmarks -m "smoke and cpu"' in out and 'pytest -m "not slow"' in out
    listed = [line.split()[0] for line in out.split("subcommands:\n")[1].splitlines() if line.strip()]
    assert listed == list(cli.SUBCOMMANDS) == ["report", "compare", "history", "merge", "launch", "data",
                                               "gpu-check"]


def test_help_is_the_same_page(capsys):
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().out == cli.usage()


def test_an_unknown_subcommand_names_the_valid_ones(capsys):
    assert cli.main(["reprot"]) == 2
    assert "unknown subcommand 'reprot'. Valid values: report, compare, history" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_every_subcommand_help_shows_its_defaults(name, capsys, monkeypatch):
    parsers = []
    real = argparse.ArgumentParser.parse_args

    def spy(self, *args, **kwargs):
        parsers.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mnistbench {name}")
    (parser,) = parsers
    options = [a for a in parser._actions if a.option_strings and a.dest != "help" and not a.required]
    assert options, name
    for action in options:  # every option says its default, where a reader looks for it
        assert "(default" in (action.help or ""), f"mnistbench {name} {action.option_strings[0]}: {action.help}"


def test_every_subcommand_target_exists():
    for name, sub in cli.SUBCOMMANDS.items():
        module, _, function = sub.target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.skipif(shutil.which("mnistbench") is None, reason="the console script is not installed (pip install -e .)")
def test_the_console_script_and_python_dash_m_are_one_command():
    script = subprocess.run(["mnistbench"], capture_output=True, text=True, timeout=60)
    module = subprocess.run([sys.executable, "-m", "mnistbench"], capture_output=True, text=True, timeout=60)
    assert script.returncode == module.returncode == 0
    assert script.stdout == module.stdout == cli.usage()
