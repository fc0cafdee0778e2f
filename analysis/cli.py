"""The ``iapo`` command line.

Each subcommand lives in a module exposing ``add_parser(subparsers)`` (which sets ``func`` on its
parser). Only the module of the subcommand being run is imported: the others are listed by name
and one-line help (:data:`COMMANDS`), so ``iapo --help`` starts without importing Numba, SciPy or
the simulator. Errors are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand name -> (module defining ``add_parser``, one-line help shown by ``iapo --help``).
COMMANDS = {
    "envs": ("analysis.cmd_envs", "list the built-in environments"),
    "curves": ("analysis.cmd_envs", "exact Q(c, p, N) of an environment, per context"),
    "bench": ("analysis.bench", "print the performance table of all benchmarks"),
    "sweep": ("analysis.cmd_sweep",
              "run a grid of environments × learners × budgets × replicates"),
    "import": ("analysis.cmd_import",
               "build an environment file from a log of sampled completions"),
    "compare": ("analysis.cmd_compare", "learning curves of learners on an environment"),
    "deceive": ("analysis.cmd_analysis", "exact rank flips, crossovers and disjoint loss"),
    "complexity": ("analysis.cmd_analysis",
                   "Theorem 1 bound and measured error against budget"),
    "figures": ("analysis.cmd_analysis", "every figure and REPORT.md"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


class _Subparsers:
    """What a command module's ``add_parser`` receives: adds its subcommands with their help
    line from :data:`COMMANDS`."""

    def __init__(self, sub):
        self._sub = sub

    def add_parser(self, name, **kwargs):
        return self._sub.add_parser(name, help=COMMANDS[name][1], **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``iapo`` parser, with the full options of ``command``'s module (None: of every
    module); every other subcommand is a placeholder holding its help line."""
    parser = _Parser(prog="iapo", description="Inference-aware prompt optimization toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = COMMANDS[command][0] if command in COMMANDS else None
    done = set()
    for name, (module, help_) in COMMANDS.items():
        if module in done:
            continue
        if command is None or module == wanted:
            importlib.import_module(module).add_parser(_Subparsers(sub))
            done.add(module)
        else:
            sub.add_parser(name, help=help_)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"iapo {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("iapo: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
