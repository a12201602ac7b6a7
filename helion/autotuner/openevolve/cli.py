"""The ``helion-openevolve`` command: read run records, and look after the history store.

    helion-openevolve report RECORD...               what each search did, and a picture of it
    helion-openevolve history --path|--list|--clear [KERNEL]

``report`` reads run records (the ``record_path`` setting; ``.jsonl``, or ``.jsonl.gz`` as the
committed examples are) and prints, per record, the summary line's counters (configs by source,
best against the default, mode, why the search stopped), the configs the LLM proposed with
their costs (grouped by the batch that measured them), the wall time split and the tokens, then
one table over all records. Where matplotlib is installed (``pip install
'helion-openevolve[plot]'``) it draws each search as a PNG: every evaluation's cost over time,
coloured by source, the best cost so far, and when the LLM's configs were measured.

``history`` shows where the history store is (:mod:`.adapters.history`: ``history_dir``, default
``openevolve-history`` in Helion's cache folder), lists what it holds, or deletes a kernel's
picks or all of them.

This module imports neither Helion nor torch: a subcommand imports what it needs (``history``
reads Helion's cache folder through :mod:`.adapters.history`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import sys
from typing import TYPE_CHECKING

from .run_view import Run
from .run_view import _ms
from .run_view import _num

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Sequence


def _s(value: object) -> str:
    x = _num(value)
    return "-" if x is None else f"{x:.1f}"


def describe(run: Run) -> list[str]:
    """The report of one run, as lines of text."""
    s = run.last("summary")
    out = [f"== {run.name}"]
    if not s:
        n = len(run.evaluations())
        return [*out, f"no summary line: the search did not finish ({n} evaluations written)", ""]
    stop = run.last("stop").get("reason") or s.get("stop_reason") or "-"
    fallback = run.last("fallback").get("reason") or s.get("fallback_reason")
    out.append(
        f"mode {s.get('mode')}; stopped: {stop}" + (f"; went on without the LLM: {fallback}" if fallback else "")
    )
    speedup = _num(s.get("speedup"))
    out.append(
        f"best {_ms(s.get('best_cost'))} ms, default {_ms(s.get('default_cost'))} ms"
        + (f" ({speedup:.3f}x the default's speed)" if speedup else "")
        + f"; the pick came from {s.get('winner_source')} (its path started at {s.get('winner_origin')})"
    )
    by_source = s.get("by_source") or {}
    sources = ", ".join(f"{k} {v}" for k, v in by_source.items()) if isinstance(by_source, dict) else ""
    out.append(
        f"{s.get('evaluations')} configs measured ({s.get('failed')} failed), {s.get('invalid')} invalid: {sources}"
    )
    out.append(
        f"LLM: {s.get('llm_calls')} calls, {s.get('llm_errors')} failed, {s.get('llm_answers_used')} answers used, "
        f"{s.get('llm_answers_improved', '-')} improved the best; first request at {_s(s.get('first_llm_request_s'))} s, "
        f"first answer at {_s(s.get('first_llm_answer_s'))} s"
    )
    out.append(f"tokens: {s.get('prompt_tokens')} prompt, {s.get('completion_tokens')} completion")
    busy = _num(s.get("busy_share"))
    out.append(
        f"time: wall {_s(s.get('wall_s'))} s = measuring {_s(s.get('measure_s'))} s (of it timing configs again "
        f"{_s(s.get('verify_s'))} s) + waiting for the LLM {_s(s.get('llm_wait_s'))} s + startup "
        f"{_s(s.get('startup_s'))} s + Helion's final selection {_s(s.get('finalize_s'))} s + other "
        f"{_s(s.get('other_s'))} s"
        + (f"; device busy {busy:.0%}" if busy is not None else "")
        + f"; compile time summed over configs {_s(s.get('compile_sum_s'))} s"
    )
    errors = [line for line in run.lines if line.get("kind") == "llm_error"]
    if errors:
        last = errors[-1]
        out.append(f"LLM errors: {len(errors)}, the last: {last.get('error_class')}: {last.get('message')}")
    out += ["", *llm_table(run), ""]
    return out


def llm_table(run: Run) -> list[str]:
    """The configs the LLM proposed, one row per batch that measured some, with their costs."""
    rows = [b for b in run.batches if b.llm()]
    if not rows:
        return ["the LLM proposed no config that was measured"]
    out = [
        "configs the LLM proposed, by the batch that measured them (costs in ms, fastest first):",
        f"{'at s':>7} {'configs':>7} {'ok':>4} {'failed':>6} {'invalid':>7} {'best':>8} {'best before':>11}  costs",
    ]
    for b in rows:
        llm = b.llm()
        costs = sorted(c for e in llm if (c := _num(e.get("cost"))) is not None and e.get("status") == "ok")
        invalid = sum(e.get("status") == "invalid" for e in llm)
        failed = len(llm) - len(costs) - invalid
        out.append(
            f"{b.t:>7.1f} {len(llm):>7} {len(costs):>4} {failed:>6} {invalid:>7} {_ms(costs[0] if costs else None):>8} "
            f"{_ms(b.best_before):>11}  {' '.join(f'{c:.4g}' for c in costs)}"
        )
    return out


def table(runs: Sequence[Run]) -> list[str]:
    """One row per run: what it cost (re-timing: the seconds spent timing configs again, the
    rounds, the paired noise of one round) and what it found."""
    out = [
        f"{'record':<44} {'wall s':>7} {'configs':>7} {'re-timing s':>11} {'rounds':>6} {'noise %':>7} "
        f"{'LLM calls':>9} {'prompt tokens':>13} "
        f"{'completion tokens':>17} {'prompt/call':>11} {'best ms':>8} {'x default':>9}  mode"
    ]
    for run in runs:
        s = run.last("summary")
        speedup, calls, prompt = _num(s.get("speedup")), s.get("llm_calls"), s.get("prompt_tokens")
        per_call = f"{prompt / calls:.0f}" if isinstance(calls, int) and calls and isinstance(prompt, int) else "-"
        noise = "-" if (x := _num(s.get("timing_noise"))) is None else f"{100 * x:.2f}"
        out.append(
            f"{run.name:<44} {_s(s.get('wall_s')):>7} {s.get('evaluations', '-'):>7} {_s(s.get('verify_s')):>11} "
            f"{s.get('retiming_rounds', '-'):>6} {noise:>7} {calls or '-':>9} "
            f"{s.get('prompt_tokens', '-'):>13} {s.get('completion_tokens', '-'):>17} {per_call:>11} "
            f"{_ms(s.get('best_cost')):>8} {f'{speedup:.3f}x' if speedup else '-':>9}  {s.get('mode', 'unfinished')}"
        )
    return out


#: The picture's cost axis ends at this multiple of the best cost; slower configs sit on its top edge.
def report(records: Sequence[str], *, plot_dir: Path | None) -> int:
    runs = []
    for name in records:
        path = Path(name)
        if not path.is_file():
            print(f"helion-openevolve report: no such record: {path}", file=sys.stderr)
            return 1
        runs.append(Run.read(path))
        print("\n".join(describe(runs[-1])))
    print("\n".join(table(runs)))
    if plot_dir is None:
        return 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed (pip install 'helion-openevolve[plot]'): no picture")
        return 0
    plot_dir.mkdir(parents=True, exist_ok=True)
    for run in runs:
        png = plot_dir / f"{run.name}.png"
        from .report_plot import draw

        draw(run, png)
        print(f"picture: {png}")
    return 0


# --- history -------------------------------------------------------------------------------------


def history_root(explicit: str | None) -> Path:
    """The store a search uses: ``--dir``, else ``HELION_OPENEVOLVE_HISTORY_DIR`` (whitespace
    stripped, empty is unset, as Helion's settings read it), else Helion's cache folder's."""
    chosen = explicit or os.environ.get("HELION_OPENEVOLVE_HISTORY_DIR", "").strip()
    if chosen:
        return Path(chosen)
    from .adapters.history import default_root

    return default_root()


def kernel_folders(root: Path, kernel: str | None) -> list[Path]:
    """The store's kernel folders (``NAME-HASH12``), only ``kernel``'s when it is given."""
    from .adapters.history import _slug

    if not root.is_dir():
        return []
    pattern = re.compile(rf"{re.escape(_slug(kernel)) if kernel else '.+'}-[0-9a-f]{{12}}")
    return sorted(p for p in root.iterdir() if p.is_dir() and pattern.fullmatch(p.name))


def describe_file(path: Path) -> str:
    """One shape file: its shape, picks and best pick, or why it cannot be read."""
    from .adapters.history import FORMAT
    from .adapters.history import _entry

    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"not a history file of format {FORMAT}")
        entries = sorted((_entry(item) for item in data["entries"]), key=lambda e: e.cost)
        shape = ", ".join(data["shape"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"    unreadable: {path.name} ({type(e).__name__}: {e})"
    if not entries:
        return f"    {shape}: no picks"
    best = entries[0]
    vs = f", default {best.default_cost:.4g} ms" if best.default_cost else ""
    picks = f"{len(entries)} pick{'s' if len(entries) > 1 else ''}"
    return f"    {shape}: {picks}, best {best.cost:.4g} ms{vs} ({best.mode}, {best.date})"


def history(args: argparse.Namespace) -> int:
    root = history_root(args.dir)
    folders = kernel_folders(root, args.kernel)
    if args.path:
        print(root)
        for folder in folders if args.kernel else ():
            print(folder)
        return 0
    if args.list:
        print(f"history store: {root}" + ("" if root.is_dir() else " (empty: nothing kept yet)"))
        for folder in folders:
            for device in sorted(p for p in folder.iterdir() if p.is_dir()):
                print(f"{folder.name} on {device.name}:")
                print("\n".join(describe_file(f) for f in sorted(device.glob("*.json"))))
        if args.kernel and not folders:
            print(f"no history of a kernel named {args.kernel!r}")
        return 0
    for folder in folders:
        shutil.rmtree(folder)
        print(f"removed {folder}")
    if not folders:
        print(f"nothing to remove in {root}" + (f" for a kernel named {args.kernel!r}" if args.kernel else ""))
    elif root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="helion-openevolve",
        description="Read what OpenEvolve searches of Helion kernels did (their run records), and look after "
        "the history store of their picks.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "report", help="what each search of the run records did; a PNG of it where matplotlib is installed"
    )
    r.add_argument("records", nargs="+", metavar="RECORD", help="run record (.jsonl or .jsonl.gz)")
    r.add_argument("--plot-dir", default=".", help="where the pictures go, RECORD-NAME.png (default: here)")
    r.add_argument("--no-plot", action="store_true", help="print only, draw nothing")
    h = sub.add_parser("history", help="where the history store is, what it holds; clear it")
    what = h.add_mutually_exclusive_group(required=True)
    what.add_argument("--path", action="store_true", help="print the store's folder (and KERNEL's folders)")
    what.add_argument("--list", action="store_true", help="every kernel, device and shape kept, with its best pick")
    what.add_argument("--clear", action="store_true", help="delete KERNEL's picks, or every kernel's")
    h.add_argument("kernel", nargs="?", metavar="KERNEL", help="the kernel's function name (default: every kernel)")
    h.add_argument("--dir", default=None, help="the store's folder (default: the one a search uses)")
    return p


def main(argv: Iterable[str] | None = None) -> int:
    args = parser().parse_args(None if argv is None else list(argv))
    if args.command == "report":
        return report(args.records, plot_dir=None if args.no_plot else Path(args.plot_dir))
    return history(args)


if __name__ == "__main__":
    sys.exit(main())
