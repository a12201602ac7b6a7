"""The picture ``helion-openevolve report`` draws of one search (matplotlib, the ``plot`` extra):
every evaluation's cost over time coloured by source, the best cost so far, the batches that
measured the LLM's configs, and Helion's final selection with the pick. The run it draws is read
by :mod:`.run_view`; matplotlib is imported only when a picture is drawn."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .run_view import _ms
from .run_view import _num

if TYPE_CHECKING:
    from pathlib import Path

    from .run_view import Run

#: Colour of each evaluation source in the picture.
COLOURS = {
    "default": "black",
    "seed": "tab:gray",
    "history": "tab:brown",
    "llm": "tab:red",
    "refine": "tab:blue",
    "random": "tab:green",
    "fallback": "tab:orange",
}

PLOT_TOP = 3.0


def draw(run: Run, png: Path) -> None:
    """The picture of one search: every evaluation's cost over time coloured by source (LLM
    configs as stars; slower than :data:`PLOT_TOP` times the best, and failed, as marks on the
    top edge), the best cost so far, the batches that measured LLM configs, when the first LLM
    request left and its answer came, and Helion's final selection with the pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 4.8))
    best = min((b for _, b in run.best_over_time), default=None)
    top = best * PLOT_TOP if best else math.inf
    edge = ax.get_xaxis_transform()  # x in data, y in axes: 1.0 is the top edge
    for source, colour in COLOURS.items():
        mine = [e for e in run.evaluations() if e.get("source") == source and e.get("status") != "invalid"]
        ok = [(e["t"], c) for e in mine if (c := _num(e.get("cost"))) is not None and e.get("status") == "ok"]
        low, high = [p for p in ok if p[1] <= top], [p[0] for p in ok if p[1] > top]
        failed = [e["t"] for e in mine if e.get("status") != "ok"]
        star, first = source == "llm", source == "default"
        if not mine:
            continue
        label = f"{source}: {len(ok)}" + (f" + {len(failed)} failed" if failed else "")
        ax.scatter(
            [t for t, _ in low], [c for _, c in low], s=90 if star else 40 if first else 12, c=colour, label=label,
            marker="*" if star else "D" if first else "o", alpha=0.9 if star or first else 0.5, zorder=3,
        )  # fmt: skip
        ax.scatter(high, [1.0] * len(high), marker="^", c=colour, s=14, transform=edge, clip_on=False, alpha=0.6)
        ax.scatter(failed, [1.0] * len(failed), marker="x", c=colour, s=20, transform=edge, clip_on=False)
    s, stop = run.last("summary"), _num(run.last("stop").get("t"))
    if run.best_over_time:
        t, bests = zip(*run.best_over_time, strict=True)
        end = stop or t[-1]
        ax.step([*t, end], [*bests, bests[-1]], where="post", c="black", lw=1.5, label="best so far", zorder=4)
    _mark_llm_and_end(ax, run, s, stop)
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:.3g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    if best:
        ax.set_ylim(top=top)
    ax.set_xlabel("seconds since the search started")
    ax.set_ylabel("cost (ms, log scale)")
    speedup = _num(s.get("speedup"))
    ax.set_title(
        f"{run.name}: {s.get('mode', 'unfinished')}"
        + (f", pick {_ms(s.get('best_cost'))} ms, {speedup:.2f}x the default's speed" if speedup else ""),
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    note = f"on the top edge: configs slower than {PLOT_TOP:g}x the best (^) and failed ones (x)"
    ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, color="0.4")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _mark_llm_and_end(ax: object, run: Run, s: dict[str, object], stop: float | None) -> None:
    """The LLM's marks (first request, first answer, batches with its configs) and the end:
    Helion's final selection, shaded, and the pick's cost as it timed it."""
    for label, t, style in (
        ("first LLM request", s.get("first_llm_request_s"), ":"),
        ("first LLM answer", s.get("first_llm_answer_s"), "--"),
    ):
        if (x := _num(t)) is not None:
            ax.axvline(x, c="tab:red", ls=style, lw=1, label=label)  # type: ignore[attr-defined]
    llm_batches = [b.t for b in run.batches if b.llm()]
    for i, t in enumerate(llm_batches):
        label = "a batch with LLM configs" if i == 0 else None
        ax.axvspan(t - 0.4, t + 0.4, color="tab:red", alpha=0.12, lw=0, label=label)  # type: ignore[attr-defined]
    wall = _num(s.get("wall_s"))
    if stop is not None and wall is not None:
        ax.axvspan(stop, wall, color="0.88", lw=0, label="Helion's final selection")  # type: ignore[attr-defined]
        if (pick := _num(s.get("best_cost"))) is not None:
            ax.scatter([wall], [pick], marker="o", s=60, facecolors="none", edgecolors="black", lw=1.5,  # type: ignore[attr-defined]
                       label="the pick, as Helion's final selection timed it", zorder=5)  # fmt: skip
