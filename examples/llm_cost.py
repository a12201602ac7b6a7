"""Estimate the LLM cost of tuning runs from the token counts in their run records.

The search's run record (``record_path``) ends with a ``summary`` line holding
``prompt_tokens`` and ``completion_tokens``, summed from the usage the LLM reports with each
answer. The cost is those counts times your model's prices, given in dollars per million
tokens (defaults: 0.15 input / 0.60 output, the list prices we assumed for gpt-4o-mini; check
your provider's). With the bundled stand-in LLM the counts are characters / 4 of the real
prompts and of the stand-in's answers: indicative for the prompt side only, since a real
model's answers are usually longer.

    python examples/llm_cost.py run.jsonl [more.jsonl ...] --input-price 0.15 --output-price 0.60
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helion.autotuner.openevolve.loop.record import last_line
from helion.autotuner.openevolve.loop.record import read_record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("records", nargs="+", type=Path)
    p.add_argument("--input-price", type=float, default=0.15, help="$ per million prompt tokens")
    p.add_argument("--output-price", type=float, default=0.60, help="$ per million completion tokens")
    a = p.parse_args()
    print(f"prices: ${a.input_price}/M prompt tokens, ${a.output_price}/M completion tokens (an estimate)")
    print(f"{'record':<40} {'LLM calls':>9} {'prompt tok':>11} {'completion tok':>14} {'est. cost $':>11}")
    total = 0.0
    for path in a.records:
        s = last_line(read_record(path), "summary")
        if s is None:
            print(f"{path.name:<40} no summary line (the run did not finish)")
            continue
        prompt, completion = int(s.get("prompt_tokens") or 0), int(s.get("completion_tokens") or 0)
        cost = (prompt * a.input_price + completion * a.output_price) / 1e6
        total += cost
        print(f"{path.name:<40} {s.get('llm_calls', 0):>9} {prompt:>11} {completion:>14} {cost:>11.4f}")
    print(f"{'total':<40} {'':>9} {'':>11} {'':>14} {total:>11.4f}")


if __name__ == "__main__":
    main()
