"""CLI start-up stays light: importing the CLI and printing help import none of the heavy
modules (torch, matplotlib, onnx, Lava), and help is typer's plain formatter, not rich's
(docs/benchmarks.md: start-up goal ≤ 0.5 s). Checked in a fresh interpreter each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "matplotlib", "onnx", "lava", "typer.rich_utils")

PROBE = """
import json, sys
import neurodeploy.cli as cli
code = None
if sys.argv[1:]:
    code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("argv", [[], ["--help"], ["run", "--help"], ["compile", "--help"]],
                         ids=["import", "help", "run-help", "compile-help"])
def test_cli_start_up_imports_nothing_heavy(argv):
    p = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    got = json.loads(p.stderr.strip().splitlines()[-1])
    assert got["loaded"] == [], got
    if argv:
        assert got["code"] == 0 and "Usage" in p.stdout
