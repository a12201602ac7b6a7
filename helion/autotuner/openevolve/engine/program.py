"""The evolved program: a literal block of candidate configs, rendered and parsed as data.

OpenEvolve evolves text. Here that text is a tiny Python-looking file whose evolve block
assigns one list literal, ``CANDIDATES = [{...}, ...]``. :func:`render_program` writes it (the
seed program and the prompts' examples); :func:`parse_program` reads an LLM-edited version back
into plain dicts with :func:`ast.literal_eval`. Nothing here ever executes the text, so a
candidate block holding calls, lambdas, comprehensions or f-strings is rejected with a reason
that goes back to the LLM as feedback.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from dataclasses import field
import pprint

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"
VARIABLE = "CANDIDATES"
#: Programs longer than this are refused before parsing (OpenEvolve caps it too).
MAX_PROGRAM_CHARS = 200_000


class ProgramError(ValueError):
    """The evolved program is not a well-formed candidate block; the message says why."""


@dataclass(frozen=True)
class ParsedProgram:
    """Candidate dicts read from a program, plus per-entry rejections (index, reason)."""

    candidates: list[dict[str, object]]
    rejected: list[tuple[int, str]] = field(default_factory=list)


def render_program(title: str, candidates: list[dict[str, object]]) -> str:
    """Write the program text for ``candidates`` (plain JSON-like dicts)."""
    body = pprint.pformat(candidates, width=96, sort_dicts=False, compact=False)
    return (
        f'"""{title}\n\n'
        "Data only: this file is parsed with ast.literal_eval and never executed.\n"
        f'Edit the {VARIABLE} list inside the evolve block."""\n'
        f"{BLOCK_START}\n{VARIABLE} = {body}\n{BLOCK_END}\n"
    )


def _evolve_block(text: str) -> str:
    starts = text.count(BLOCK_START)
    ends = text.count(BLOCK_END)
    if starts == 0 and ends == 0:
        return text  # a bare assignment is accepted
    if starts != 1 or ends != 1:
        raise ProgramError(
            f"expected exactly one {BLOCK_START} / {BLOCK_END} pair, found {starts} start and {ends} end markers"
        )
    start = text.index(BLOCK_START) + len(BLOCK_START)
    end = text.index(BLOCK_END)
    if end < start:
        raise ProgramError(f"{BLOCK_END} comes before {BLOCK_START}")
    return text[start:end]


def _candidate_node(block: str) -> ast.expr:
    try:
        module = ast.parse(block)
    except SyntaxError as e:
        raise ProgramError(f"the evolve block is not valid Python syntax: {e.msg} (line {e.lineno})") from None
    assigns = [
        node
        for node in module.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == VARIABLE
    ]
    if len(assigns) != 1:
        raise ProgramError(f"the evolve block must assign {VARIABLE} exactly once, found {len(assigns)}")
    others = [n for n in module.body if n is not assigns[0] and not _is_docstring(n)]
    if others:
        raise ProgramError(
            f"the evolve block may hold only the {VARIABLE} assignment; "
            f"found {type(others[0]).__name__} on line {others[0].lineno}"
        )
    value = assigns[0].value
    if not isinstance(value, ast.List):
        raise ProgramError(f"{VARIABLE} must be a list literal of dicts, got {type(value).__name__}")
    return value


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def parse_program(text: str | bytes, *, max_candidates: int) -> ParsedProgram:
    """Read the candidate dicts out of ``text`` without executing anything.

    Raises :class:`ProgramError` when the program as a whole is unusable; entries that are
    not literal dicts with string keys are listed in ``rejected`` and the rest are kept.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProgramError(f"the program is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if len(text) > MAX_PROGRAM_CHARS:
        raise ProgramError(f"the program is {len(text)} characters long; the limit is {MAX_PROGRAM_CHARS}")
    node = _candidate_node(_evolve_block(text))
    candidates: list[dict[str, object]] = []
    rejected: list[tuple[int, str]] = []
    for index, element in enumerate(node.elts):
        if len(candidates) >= max_candidates:
            rejected.append((index, f"more than {max_candidates} candidates; the rest were ignored"))
            break
        if duplicate := _duplicate_key(element):
            rejected.append((index, f"field {duplicate!r} is given more than once"))
            continue
        try:
            value = ast.literal_eval(element)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            rejected.append(
                (index, f"not a literal (only dicts of numbers, strings, booleans, lists): {_snippet(element)}")
            )
            continue
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            rejected.append((index, f"expected a dict with string keys, got {type(value).__name__}"))
            continue
        candidates.append(value)
    return ParsedProgram(candidates, rejected)


def _duplicate_key(node: ast.expr) -> str | None:
    if not isinstance(node, ast.Dict):
        return None
    seen: set[object] = set()
    for key in node.keys:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            if key.value in seen:
                return key.value
            seen.add(key.value)
    return None


def _snippet(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."
