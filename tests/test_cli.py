"""The ``iapo`` entry point: fast ``--help`` and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis import cli


def test_help_imports_no_command_module():
    # `iapo --help` lists every subcommand from cli.COMMANDS without importing the simulator
    code = ("import sys\nfrom analysis import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('sim', 'numba', 'scipy', 'analysis.cmd_envs') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip().splitlines()[-1] == "[]"
    for name in cli.COMMANDS:
        assert name in res.stdout


@pytest.mark.parametrize("argv", [
    ["curves", "math", "--seed", "-1"],
    ["compare", "math", "--seed", "-3", "--runs", "1", "--budgets", "1000", "--learners",
     "oracle"],
    ["complexity", "math", "--seed", "-2", "--runs", "0"],
])
def test_negative_seed_is_one_line_error(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed must be" in err[0] and ">= 0" in err[0]


def test_directory_as_output_file_is_one_line_error(tmp_path, capsys):
    # checked before the run starts
    argv = ["compare", "math", "--runs", "1", "--budgets", "1000", "--learners", "oracle",
            "--json", str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a directory" in err[0]


def test_os_errors_are_one_line(tmp_path, capsys):
    # a directory where the sweep spec should be: an OSError from open(), reported in one line
    assert cli.main(["sweep", str(tmp_path), "--out", str(tmp_path / "r.sqlite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iapo sweep: error:")
