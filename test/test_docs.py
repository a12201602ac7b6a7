"""The measured numbers in README.md and docs/benchmarks.md are what the committed results give.

Each table of measured numbers in those files sits between two markers, with the command that
reprints it from the rows in ``examples/results`` above it:

    <!-- reprint: NAME -->
    ```bash
    python examples/benchmark_openevolve_vs_baseline.py --report examples/results/h200_full.jsonl
    ```
    | search | kernels | ... |
    | this search, blind LLM: `OpenEvolveTuner:blind` | 7 | 1.013x | ... |
    <!-- end reprint -->

The test runs every such command, all in one Python process (torch and Helion are imported
once), in a temporary folder, and checks each table row: every number in it (``7``, ``1.013x``,
``53.0``) and every name in backticks must appear, as whole words, together on one line of its
block's output. A table quoting a number that the data no longer gives fails, and so does a
marker with no command or no checked row.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import shlex
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/benchmarks.md")
BLOCK = re.compile(r"<!-- reprint: (?P<name>.+?) -->\n(?P<body>.*?)<!-- end reprint -->", re.S)
CODE = re.compile(r"^```bash\n(?P<code>.*?)^```", re.S | re.M)
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?x?(?![\w.])")
NAME = re.compile(r"`([^`\s]+)`")

# Runs each command as its own program would: an example script as __main__ (sys.argv set), the
# console script through its main(). With HELION_OPENEVOLVE_TEST_SOURCE=1 the source tree is
# under test, set up as conftest.py sets it up (the scripts import the plugin's public module).
DRIVER = r"""
import json, os, runpy, sys, traceback
root, commands = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, os.path.join(root, "examples"))
if os.environ.get("HELION_OPENEVOLVE_TEST_SOURCE") == "1":
    from example_support import select_backend
    select_backend(["--cpu"])
    import helion.autotuner
    helion.autotuner.__path__.insert(0, os.path.join(root, "helion", "autotuner"))
for i, argv in enumerate(commands):
    try:
        if argv[0] == "helion-openevolve":
            from helion.autotuner.openevolve.cli import main
            code = main(argv[1:])
        else:
            sys.argv = argv[1:]
            runpy.run_path(argv[1], run_name="__main__")
            code = 0
    except SystemExit as e:
        code = e.code
    except Exception:
        traceback.print_exc(file=sys.stdout)
        code = "exception"
    print(f"\0 reprint command {i} done: exit {code}", flush=True)
"""


@dataclass
class Block:
    doc: str
    name: str
    commands: list[list[str]]
    rows: list[str]


def blocks(doc: str) -> list[Block]:
    text = (ROOT / doc).read_text()
    found = []
    for m in BLOCK.finditer(text):
        body = m["body"]
        code = "\n".join(c["code"] for c in CODE.finditer(body)).replace("\\\n", " ")
        commands = [shlex.split(line) for line in code.splitlines() if line.strip() and not line.startswith("#")]
        rows = [line for line in body.splitlines() if line.startswith("|") and numbers(line)]
        found.append(Block(doc, m["name"], commands, rows))
    return found


def numbers(row: str) -> set[str]:
    return set(NUMBER.findall(NAME.sub(" ", row)))


def runnable(argv: list[str]) -> list[str]:
    """``python SCRIPT ARGS`` (an example script) or ``helion-openevolve ARGS``, with the
    repository's paths made absolute (the commands run in a temporary folder)."""
    assert argv[0] == "helion-openevolve" or (argv[0] == "python" and argv[1].startswith("examples/")), argv
    return [str(ROOT / a) if "/" in a and (ROOT / a).exists() else a for a in argv]


def test_every_documented_table_is_what_its_command_prints(tmp_path: Path) -> None:
    found = [b for doc in DOCS for b in blocks(doc)]
    assert {b.doc for b in found} == set(DOCS), "README.md and docs/benchmarks.md each quote measured tables"
    assert "results table" in {b.name for b in found if b.doc == "README.md"}
    empty = [f"{b.doc}: {b.name}" for b in found if not b.commands or not b.rows]
    assert not empty, f"reprint blocks with no command or no table row with numbers: {empty}"

    commands = list(dict.fromkeys(tuple(runnable(c)) for b in found for c in b.commands))
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(ROOT), json.dumps(commands)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    outputs = proc.stdout.split("\0 reprint command ")
    assert proc.returncode == 0 and len(outputs) == len(commands) + 1, (proc.stdout + proc.stderr)[-4000:]
    by_command = {}
    for argv, out, done in zip(commands, outputs[:-1], outputs[1:], strict=True):
        assert done.split("\n", 1)[0].endswith("exit 0"), f"{shlex.join(argv)} failed:\n{out[-4000:]}"
        by_command[argv] = out

    missing = []
    for b in found:
        lines = [
            {word.strip("[](),;") for word in line.split()}
            for argv in b.commands
            for line in by_command[tuple(runnable(argv))].splitlines()
        ]
        for row in b.rows:
            wanted = numbers(row) | set(NAME.findall(row))
            if not any(wanted <= words for words in lines):
                missing.append(f"{b.doc} [{b.name}]: {row}")
    assert not missing, "table rows that their reprint command does not print:\n" + "\n".join(missing)
