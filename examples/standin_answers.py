"""What the stand-in LLM answers: pure functions from a prompt's text to the answer's text.

The server (``standin_llm.py``) hands :func:`propose` the system text and the user messages of
a request, whichever API it came through; everything the answer needs is read from that text.
Two prompt dialects are understood:

- OpenEvolve's, as this plugin's search writes it: the system text holds ``## Search space``
  and ``## Default config`` JSON blocks and ``Propose N candidates``; the last user message
  holds the current program (a ```python block assigning ``CANDIDATES = [...]``) and
  optionally a ``BEST_CONFIG_JSON: {...}`` feedback line, the anchor for new proposals. The
  answer is a program: the whole rewrite, or SEARCH/REPLACE blocks when the prompt shows them.
- Helion's own LLM searches (``LLMGuidedSearch``, ``LLMSeededLFBOTreeSearch``; written by
  ``helion/autotuner/llm/prompting.py``): the first user message holds ``## Configuration
  Space``, one line per field (``num_warps: power_of_2(min=1, max=32, default=4)``,
  ``indexing: list of 3 x enum('pointer')``, ``block_sizes: [power_of_2(...), ...]``) and
  ``## Default Configuration``, one JSON line; the number asked for is ``up to N ... UNIQUE``;
  a refinement prompt lists ``Anchor k (...): ... — {sparse config}`` lines. The answer is the
  minified JSON ``{"configs":[...]}`` of sparse configs (fields that differ from the default),
  which Helion's ``parse_response_configs`` reads.

Configs are proposed per mode (see :data:`TEXT_MODES`): neighbours of the anchors, random
configs of the space, known configs first (``knowing``), or one of the failure texts. Nothing
here imports torch or helion; randomness comes only from the ``random.Random`` passed in.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from collections.abc import Sequence
import json
import random
import re
from typing import Any
from typing import NamedTuple

Config = dict[str, Any]
Spec = dict[str, Any]

TEXT_MODES = ("neighbors", "random", "knowing", "invalid", "garbage", "empty", "huge", "code")

DEFAULT_BATCH = 4
MAX_BATCH = 256
HUGE_BYTES = 5 * 1024 * 1024
GARBAGE_TEXT = "I think you should try bigger tiles!!!"
CODE_LIST = "CANDIDATES = [__import__('os').system('touch /tmp/pwned_standin'), (lambda: 1)(), {\"num_warps\": 4}]"
CODE_JSON = '{"configs":[__import__("os").system("touch /tmp/pwned_standin"),{"block_sizes":[64]*3}]}'
_DIFF_MARK = "<<<<<<< SEARCH"
_LIST_START = re.compile(r"\bCANDIDATES\s*=\s*\[")
_CURRENT = re.compile(r"#\s*Current Program\s*\n```[^\n]*\n(.*?)```", re.DOTALL)
_FENCE = re.compile(r"```python[^\n]*\n(.*?)```", re.DOTALL)
_BEST = re.compile(r"BEST_CONFIG_JSON:\s*(\{.*\})[ \t]*$", re.MULTILINE)
_BATCH = re.compile(r"Propose (\d+) candidates")
_HELION_SPACE = re.compile(r"^## Configuration Space\n((?:[ \t]+\S.*(?:\n|$))*)", re.MULTILINE)
_HELION_FIELD = re.compile(r"^\s+(\w+): (.+)$", re.MULTILINE)
_HELION_DEFAULT = re.compile(r"^## Default Configuration\n", re.MULTILINE)
_HELION_BATCH = re.compile(r"\bup to (\d+) (?:NEW )?UNIQUE")
_HELION_ANCHOR = re.compile(r"^\s*Anchor \d+ \([^)]*\):.*? — (\{.*\})[ \t]*$", re.MULTILINE)
_FRAGMENT = re.compile(r"(\w+)\((.*)\)")


# --------------------------------------------------------------------------
# OpenEvolve's prompts
# --------------------------------------------------------------------------


def _json_section(text: str, heading: str) -> Any:
    """The JSON block following ``## <heading>``, or None."""
    pattern = r"##\s*" + re.escape(heading) + r"[^\n]*\n.*?```json[^\n]*\n(.*?)```"
    match = re.search(pattern, text, re.DOTALL)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


def batch_size(system: str) -> int:
    """N from ``Propose N candidates`` (default 4, capped at MAX_BATCH)."""
    match = _BATCH.search(system)
    if match is None:
        return DEFAULT_BATCH
    return max(1, min(MAX_BATCH, int(match.group(1))))


def current_program(user: str) -> str | None:
    """Parent program: block under ``# Current Program``, else first ```python block."""
    match = _CURRENT.search(user) or _FENCE.search(user)
    return match.group(1) if match else None


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth after it) of each character outside string literals."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
            continue
        depth += (ch in "[({") - (ch in "])}")
        yield i, ch, depth


def _close_bracket(text: str, open_at: int) -> int | None:
    """Index just past the bracket matching ``text[open_at]``, skipping strings."""
    return next((i + 1 for i, _, depth in _scan(text, open_at) if depth == 0), None)


def candidates_span(text: str, start: int = 0) -> tuple[int, int] | None:
    """(begin, end) of the first ``CANDIDATES = [...]`` assignment at or after start."""
    match = _LIST_START.search(text, start)
    if match is None:
        return None
    end = _close_bracket(text, match.end() - 1)
    return None if end is None else (match.start(), end)


def _literal_list(text: str, span: tuple[int, int]) -> list[Any] | None:
    source = text[span[0] : span[1]]
    try:
        value = ast.literal_eval(source[source.index("[") :])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def _first_candidates(text: str) -> list[Config] | None:
    """Dicts of the first parseable ``CANDIDATES`` list in text."""
    pos = 0
    while (span := candidates_span(text, pos)) is not None:
        items = _literal_list(text, span)
        dicts = [c for c in items or [] if isinstance(c, dict)]
        if dicts:
            return dicts
        pos = span[1]
    return None


def _best_config(user: str) -> Config | None:
    for match in _BEST.finditer(user):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _anchors(user: str, default: Config) -> list[Config]:
    """Full configs to propose around.

    BEST_CONFIG_JSON if present, else the parent's CANDIDATES, else the first
    parseable CANDIDATES list anywhere in the user text, else the default.
    """
    best = _best_config(user)
    if best is not None:
        return [{**default, **best}]
    for text in (current_program(user), user):
        found = _first_candidates(text or "")
        if found:
            return [{**default, **c} for c in found]
    return [dict(default)]


# --------------------------------------------------------------------------
# Helion's prompts (helion/autotuner/llm/prompting.py)
# --------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """``a(x, y), b`` -> ``["a(x, y)", "b"]``: commas outside brackets and quotes."""
    cuts = [i for i, ch, depth in _scan(text) if ch == "," and depth == 0]
    parts = [text[i + 1 : j].strip() for i, j in zip([-1, *cuts], [*cuts, len(text)], strict=True)]
    return [p for p in parts if p]


def _helion_fragment(text: str) -> Spec | None:
    """One fragment description (``describe_fragment``) as a spec; None when not understood."""
    match = _FRAGMENT.fullmatch(text.strip())
    if match is None:
        return None
    name, args = match.groups()
    numbers = {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", args)}
    if name == "integer" and args.startswith("0=auto"):
        return {"type": "threads", "max": numbers["max"]}
    if name in ("power_of_2", "integer") and {"min", "max"} <= numbers.keys():
        kind = "pow2" if name == "power_of_2" else "int"
        return {"type": kind, "min": numbers["min"], "max": numbers["max"], "default": numbers.get("default")}
    if name == "enum":
        try:
            return {"type": "enum", "choices": list(ast.literal_eval(f"[{args}]"))}
        except (ValueError, SyntaxError):
            return None
    if name == "boolean":
        return {"type": "bool"}
    if name == "permutation" and "length" in numbers:
        return {"type": "permutation", "length": numbers["length"]}
    return None


def _helion_field(text: str) -> Spec | None:
    """One field description (``describe_config_space``) as a spec; None when not understood."""
    text = text.strip()
    if match := re.fullmatch(r"list of (\d+) x (.+)", text):
        item = _helion_fragment(match.group(2))
        return None if item is None else {"type": "list", "items": [item] * int(match.group(1))}
    if text.startswith("[") and text.endswith("]"):
        items = [_helion_fragment(part) for part in _split_top_level(text[1:-1])]
        return None if None in items else {"type": "list", "items": items}
    return _helion_fragment(text)


def spec_default(spec: Spec) -> Any:
    """The value Helion starts a field at: its default, the first choice, False, 0, identity."""
    kind = spec.get("type")
    if kind == "list":
        return [spec_default(item) for item in spec["items"]]
    if kind in ("pow2", "int"):
        return spec["default"] if spec.get("default") is not None else spec["min"]
    if kind in ("enum", "choice"):
        return spec["choices"][0] if spec["choices"] else None
    if kind == "permutation":
        return list(range(int(spec["length"])))
    return {"bool": False, "threads": 0}.get(kind, spec.get("value"))


def _fixed_unless_usable(spec: Spec | None, default: object) -> Spec:
    """A field the stand-in cannot move is fixed at the default: not understood, an empty list,
    or a list whose length differs from the default's (Helion leaves undescribable items out)."""
    usable = spec is not None and (
        spec["type"] != "list"
        or (spec["items"] and (default is None or (isinstance(default, list) and len(default) == len(spec["items"]))))
    )
    return spec if usable else {"type": "fixed", "value": default}  # type: ignore[return-value]


def helion_space(text: str) -> tuple[dict[str, Spec], Config]:
    """Search space and full default config from Helion's ``## Configuration Space`` and
    ``## Default Configuration`` sections (empty when the text has none).

    The default is the prompt's, plus each field's own default where the prompt's lacks it.
    """
    default: Config = {}
    if match := _HELION_DEFAULT.search(text):
        try:
            value, _ = json.JSONDecoder().raw_decode(text, match.end())
            default = value if isinstance(value, dict) else {}
        except ValueError:
            default = {}
    space: dict[str, Spec] = {}
    if match := _HELION_SPACE.search(text):
        for key, description in _HELION_FIELD.findall(match.group(1)):
            space[key] = _fixed_unless_usable(_helion_field(description), default.get(key))
    return space, {**{k: spec_default(s) for k, s in space.items()}, **default}


def _helion_anchors(user: str, default: Config) -> list[Config]:
    """Full configs of the ``Anchor k`` lines of a refinement prompt, else the default."""
    anchors = []
    for raw in _HELION_ANCHOR.findall(user):
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            anchors.append({**default, **{k: v for k, v in value.items() if k != "(default)"}})
    return anchors or [dict(default)]


def _helion_batch(text: str) -> int:
    found = _HELION_BATCH.findall(text)
    return max(1, min(MAX_BATCH, int(found[-1]))) if found else DEFAULT_BATCH


# --------------------------------------------------------------------------
# Search-space specs
# --------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _same(a: object, b: object) -> bool:
    """Equality that does not confuse True with 1."""
    return type(a) is type(b) and a == b


def _pow2_range(lo: int, hi: int) -> list[int]:
    values, x = [], 1
    while x <= hi:
        if x >= lo:
            values.append(x)
        x *= 2
    return values


def _domain(spec: Spec) -> list[Any] | None:
    """Every valid value for small scalar specs; None for structured ones."""
    kind = spec.get("type")
    if kind == "pow2":
        return _pow2_range(int(spec["min"]), int(spec["max"]))
    if kind in ("enum", "choice"):
        return list(spec["choices"])
    if kind == "bool":
        return [False, True]
    if kind == "threads":
        return [0, *_pow2_range(1, int(spec["max"]))]
    if kind == "fixed":
        return [spec.get("value")]
    return None


def value_is_valid(spec: Spec, value: object) -> bool:
    """Whether value lies in the field spec."""
    kind = spec.get("type")
    if value is None and spec.get("or_null"):
        return True
    if kind == "permutation":
        n = int(spec["length"])
        return isinstance(value, list) and sorted(value) == list(range(n)) and all(map(_is_int, value))
    if kind == "list":
        items = spec["items"]
        return (
            isinstance(value, list)
            and len(value) == len(items)
            and all(value_is_valid(s, v) for s, v in zip(items, value, strict=True))
        )
    if kind == "fixed":
        return value == spec.get("value")
    if kind == "int":
        return _is_int(value) and int(spec["min"]) <= value <= int(spec["max"])  # type: ignore[operator]
    domain = _domain(spec)
    return domain is None or any(_same(value, d) for d in domain)


def config_is_valid(space: dict[str, Spec], config: Config) -> bool:
    """Whether every key is a field of space and every value is valid."""
    return all(k in space and value_is_valid(space[k], v) for k, v in config.items())


def random_value(spec: Spec, rng: random.Random) -> Any:
    """A uniformly random valid value for the spec."""
    kind = spec.get("type")
    if kind == "permutation":
        perm = list(range(int(spec["length"])))
        rng.shuffle(perm)
        return perm
    if kind == "list":
        return [random_value(s, rng) for s in spec["items"]]
    if kind == "int":
        return rng.randint(int(spec["min"]), int(spec["max"]))
    domain = _domain(spec)
    return rng.choice(domain) if domain else spec.get("value")


def _step(domain: list[Any], value: object, rng: random.Random, adjacent: bool) -> Any:
    index = next((i for i, d in enumerate(domain) if _same(value, d)), None)
    if index is None:
        return rng.choice(domain)
    if adjacent:
        options = [domain[j] for j in (index - 1, index + 1) if 0 <= j < len(domain)]
    else:
        options = domain[:index] + domain[index + 1 :]
    return rng.choice(options) if options else value


def neighbor_value(spec: Spec, value: object, rng: random.Random) -> Any:
    """A neighbouring valid value (or value itself when the field cannot move)."""
    kind = spec.get("type")
    if kind == "permutation":
        return _swap_two(value, rng)
    if kind == "list":
        return _mutate_item(spec["items"], value, rng)
    if kind == "int":
        return _step_int(spec, value, rng)
    domain = _domain(spec)
    if not domain or kind == "fixed":
        return value
    return _step(domain, value, rng, adjacent=kind in ("pow2", "threads"))


def _step_int(spec: Spec, value: Any, rng: random.Random) -> Any:
    lo, hi = int(spec["min"]), int(spec["max"])
    if not value_is_valid(spec, value):
        return rng.randint(lo, hi)
    options = [v for v in (value - 1, value + 1) if lo <= v <= hi]
    return rng.choice(options) if options else value


def _swap_two(value: Any, rng: random.Random) -> Any:
    if not isinstance(value, list) or len(value) < 2:
        return value
    i, j = rng.sample(range(len(value)), 2)
    out = list(value)
    out[i], out[j] = out[j], out[i]
    return out


def _mutate_item(items: list[Spec], value: Any, rng: random.Random) -> Any:
    if not isinstance(value, list) or len(value) != len(items):
        return value
    order = list(range(len(items)))
    rng.shuffle(order)
    for i in order:
        new = neighbor_value(items[i], value[i], rng)
        if new != value[i]:
            return [*value[:i], new, *value[i + 1 :]]
    return value


def _sanitize(space: dict[str, Spec], config: Config, rng: random.Random) -> Config:
    """Config restricted to space fields; invalid or missing values made random."""
    out = {}
    for key, spec in space.items():
        value = config.get(key)
        out[key] = value if value_is_valid(spec, value) else random_value(spec, rng)
    return out


# --------------------------------------------------------------------------
# Candidate generation per mode
# --------------------------------------------------------------------------


def _sparse(config: Config, default: Config, keep: set[str]) -> Config:
    return {k: v for k, v in config.items() if k in keep or not _same(v, default.get(k))}


def _key(config: Config) -> str:
    return json.dumps(config, sort_keys=True, default=repr)


def _mutate(space: dict[str, Spec], anchor: Config, rng: random.Random) -> tuple[Config, set[str]]:
    """Anchor with 1 or 2 tunable fields moved to neighbouring values."""
    config, moved = dict(anchor), set()
    keys = [k for k, s in space.items() if s.get("type") != "fixed"]
    rng.shuffle(keys)
    want = rng.choice((1, 2))
    for key in keys:
        new = neighbor_value(space[key], config[key], rng)
        if new != config[key] or type(new) is not type(config[key]):
            config[key] = new
            moved.add(key)
        if len(moved) >= want:
            break
    return config, moved


def _neighbors(
    space: dict[str, Spec],
    default: Config,
    anchors: list[Config],
    n: int,
    rng: random.Random,
    taken: Sequence[Config] = (),
) -> list[Config]:
    """Up to n sparse configs one or two moves from the anchors, none of them an anchor or taken."""
    anchors = [_sanitize(space, a, rng) for a in anchors]
    seen = {_key(_sparse(a, default, set())) for a in anchors} | {_key(c) for c in taken}
    out: list[Config] = []
    for _ in range(n * 50):
        if len(out) >= n:
            break
        config, moved = _mutate(space, rng.choice(anchors), rng)
        candidate = _sparse(config, default, moved)
        if moved and _key(candidate) not in seen:
            seen.add(_key(candidate))
            out.append(candidate)
    return out


def _random(space: dict[str, Spec], default: Config, n: int, rng: random.Random) -> list[Config]:
    out: list[Config] = []
    seen: set[str] = set()
    for _ in range(n * 50):
        if len(out) >= n:
            break
        config = {k: random_value(s, rng) for k, s in space.items() if s.get("type") != "fixed"}
        candidate = _sparse(config, default, set())
        if _key(candidate) not in seen:
            seen.add(_key(candidate))
            out.append(candidate)
    return out


def known_in_space(space: dict[str, Spec], default: Config, known: Sequence[Config]) -> list[Config]:
    """The known configs as sparse configs of this space: only its fields, only valid values,
    only what differs from the default; duplicates dropped, order kept."""
    out: list[Config] = []
    seen: set[str] = set()
    for config in known:
        kept = {k: v for k, v in config.items() if k in space and value_is_valid(space[k], v)}
        candidate = _sparse({**default, **kept}, default, set())
        if _key(candidate) not in seen:
            seen.add(_key(candidate))
            out.append(candidate)
    return out


def _knowing(prompt: Prompt, known: Sequence[Config], rng: random.Random) -> list[Config]:
    """The known configs first (at most n), then neighbours of them up to n in all."""
    first = known_in_space(prompt.space, prompt.default, known)[: prompt.n]
    anchors = [{**prompt.default, **c} for c in first] or prompt.anchors
    more = _neighbors(prompt.space, prompt.default, anchors, prompt.n - len(first), rng, taken=first)
    return first + more


def _invalid_for(key: str, spec: Spec) -> list[Config]:
    """Out-of-space values for one field."""
    kind = spec.get("type")
    if kind == "pow2":
        return [{key: 3}, {key: int(spec["max"]) * 2}]
    if kind == "int":
        return [{key: int(spec["max"]) + 1}]
    if kind in ("enum", "choice"):
        return [{key: "not_a_choice"}]
    if kind == "bool":
        return [{key: "yes"}]
    if kind == "threads":
        return [{key: 3}]
    if kind == "permutation":
        return [{key: [0] * (int(spec["length"]) + 1)}]
    if kind == "list":
        return [{key: [None] * (len(spec["items"]) + 1)}]
    return []


def _invalid(space: dict[str, Spec], n: int, rng: random.Random) -> list[Config]:
    pool = [c for key, spec in space.items() for c in _invalid_for(key, spec)]
    rng.shuffle(pool)
    pool.insert(min(1, len(pool)), {"not_a_field": 1})
    return [pool[i % len(pool)] for i in range(n)]


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def render_candidates(candidates: list[Config]) -> str:
    """``CANDIDATES = [...]`` source, one Python-literal dict per line."""
    return "\n".join(["CANDIDATES = [", *(f"    {c!r}," for c in candidates), "]"])


def render_configs(candidates: list[Config], padding: int = 0) -> str:
    """Helion's answer format: minified ``{"configs":[...]}`` (with ``padding`` bytes of filler)."""
    answer: dict[str, object] = {"configs": candidates}
    if padding:
        answer["padding"] = "x" * padding
    return json.dumps(answer, separators=(",", ":"))


def _skeleton(listing: str) -> str:
    doc = '"""Candidate configs (data only, never executed)."""'
    return f"{doc}\n# EVOLVE-BLOCK-START\n{listing}\n# EVOLVE-BLOCK-END\n"


def _full_rewrite(parent: str | None, listing: str) -> str:
    span = candidates_span(parent) if parent else None
    program = _skeleton(listing) if parent is None or span is None else parent[: span[0]] + listing + parent[span[1] :]
    return f"Here are new candidate configs.\n\n```python\n{program.rstrip()}\n```\n"


def _diff(parent: str | None, listing: str) -> str:
    span = candidates_span(parent) if parent else None
    if parent is None or span is None:
        return _full_rewrite(parent, listing)
    old = parent[span[0] : span[1]]
    block = f"{_DIFF_MARK}\n{old}\n=======\n{listing}\n>>>>>>> REPLACE"
    return f"Updated candidates.\n\n{block}\n"


def _huge_listing(listing: str) -> str:
    line = "# " + "padding " * 12 + "\n"
    return listing + "\n" + line * (HUGE_BYTES // len(line))


# --------------------------------------------------------------------------
# Prompts and answers
# --------------------------------------------------------------------------


class Prompt(NamedTuple):
    """What a request asks for, parsed from its system and user text."""

    dialect: str  # "openevolve" (answer: a program) or "helion" (answer: {"configs": [...]})
    space: dict[str, Spec]
    default: Config
    anchors: list[Config]  # full configs to propose around
    n: int
    program: str | None  # OpenEvolve's current program, the one an answer rewrites
    diff: bool  # OpenEvolve asks for SEARCH/REPLACE blocks


def parse_prompt(system: str, user: str | Sequence[str]) -> Prompt:
    """Dialect, search space, default config, anchors and batch size of a request.

    ``user`` is the user text, or every user message of the request in order (Helion keeps its
    space in the first one and its anchors in the last). A prompt with neither dialect's space
    reads as OpenEvolve's with an empty space.
    """
    users = [user] if isinstance(user, str) else list(user) or [""]
    text = "\n\n".join([system, *users])
    if _json_section(system, "Search space") is None and _HELION_SPACE.search(text):
        space, default = helion_space(text)
        return Prompt("helion", space, default, _helion_anchors(users[-1], default), _helion_batch(text), None, False)
    return _openevolve_prompt(system, users[-1])


def _openevolve_prompt(system: str, user: str) -> Prompt:
    space = _json_section(system, "Search space")
    default = _json_section(system, "Default config")
    default = default if isinstance(default, dict) else {}
    return Prompt(
        dialect="openevolve",
        space=space if isinstance(space, dict) else {},
        default=default,
        anchors=_anchors(user, default),
        n=batch_size(system),
        program=current_program(user),
        diff=_DIFF_MARK in system or _DIFF_MARK in user,
    )


def _candidates(mode: str, prompt: Prompt, rng: random.Random, known: Sequence[Config]) -> list[Config]:
    if mode == "random":
        return _random(prompt.space, prompt.default, prompt.n, rng)
    if mode == "invalid":
        return _invalid(prompt.space, prompt.n, rng)
    if mode == "knowing":
        return _knowing(prompt, known, rng)
    found = _neighbors(prompt.space, prompt.default, prompt.anchors, prompt.n, rng)
    return found or [_sparse(a, prompt.default, set()) for a in prompt.anchors[: prompt.n]]


def propose(
    system: str,
    user: str | Sequence[str],
    mode: str,
    rng: random.Random,
    known: Sequence[Config] = (),
) -> str:
    """The assistant text for a text mode (see TEXT_MODES), in the prompt's dialect.

    ``known`` holds the configs ``knowing`` answers with first (full or sparse, any fields).
    """
    if mode == "garbage":
        return GARBAGE_TEXT
    if mode == "empty":
        return ""
    if mode not in TEXT_MODES:
        raise ValueError(f"not a text mode: {mode!r}")
    prompt = parse_prompt(system, user)
    if prompt.dialect == "helion":
        if mode == "code":
            return CODE_JSON
        return render_configs(_candidates(mode, prompt, rng, known), HUGE_BYTES if mode == "huge" else 0)
    listing = CODE_LIST if mode == "code" else render_candidates(_candidates(mode, prompt, rng, known))
    if mode == "huge":
        listing = _huge_listing(listing)
    return (_diff if prompt.diff else _full_rewrite)(prompt.program, listing)
