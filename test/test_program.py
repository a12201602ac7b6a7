"""The evolved program is parsed as data: literal dicts are kept, anything else is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from helion.autotuner.openevolve.engine import program
from helion.autotuner.openevolve.engine.program import BLOCK_END
from helion.autotuner.openevolve.engine.program import BLOCK_START
from helion.autotuner.openevolve.engine.program import MAX_PROGRAM_CHARS
from helion.autotuner.openevolve.engine.program import ProgramError
from helion.autotuner.openevolve.engine.program import parse_program
from helion.autotuner.openevolve.engine.program import render_program


def _wrap(body: str) -> str:
    return f'"""doc"""\n{BLOCK_START}\nCANDIDATES = [\n{body}\n]\n{BLOCK_END}\n'


def test_valid_block() -> None:
    text = _wrap(
        '    {"block_sizes": [64, 32], "num_warps": 4},\n    {"num_stages": 2, "pid_type": "flat", "x": None},'
    )
    parsed = parse_program(text, max_candidates=8)
    assert parsed.rejected == []
    assert parsed.candidates == [
        {"block_sizes": [64, 32], "num_warps": 4},
        {"num_stages": 2, "pid_type": "flat", "x": None},
    ]


def test_bytes_input_accepted() -> None:
    parsed = parse_program(_wrap('{"num_warps": 8}').encode(), max_candidates=4)
    assert parsed.candidates == [{"num_warps": 8}]


def test_bare_assignment_without_markers() -> None:
    parsed = parse_program('CANDIDATES = [{"num_warps": 2}]\n', max_candidates=4)
    assert parsed.candidates == [{"num_warps": 2}]


@pytest.mark.parametrize(
    "entry",
    [
        "__import__('os').system('touch {marker}')",
        "{{'num_warps': __import__('os').system('touch {marker}')}}",
        "(lambda: __import__('os').system('touch {marker}'))()",
        "{{'num_warps': (lambda: 4)}}",
        "{{'block_sizes': [i for i in range(2)]}}",
        "{{'num_warps': f'{{open(\"{marker}\", \"w\")}}'}}",
        "{{k: 4 for k in ['num_warps']}}",
    ],
    ids=["os_system", "call_in_value", "lambda_call", "lambda_value", "listcomp", "fstring", "dictcomp"],
)
def test_code_injection_rejected_and_not_executed(entry: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = _wrap(f'    {{"num_warps": 4}},\n    {entry.format(marker=marker)},\n    {{"num_warps": 8}},')
    parsed = parse_program(text, max_candidates=8)
    assert parsed.candidates == [{"num_warps": 4}, {"num_warps": 8}]
    assert len(parsed.rejected) == 1
    index, reason = parsed.rejected[0]
    assert index == 1
    assert "literal" in reason or "dict" in reason
    assert reason
    assert not marker.exists(), "the program text was executed"


def test_non_dict_entry_rejected() -> None:
    parsed = parse_program(_wrap('{"num_warps": 4}, [1, 2], {1: 2}'), max_candidates=8)
    assert parsed.candidates == [{"num_warps": 4}]
    assert [i for i, _ in parsed.rejected] == [1, 2]
    assert all("dict" in r for _, r in parsed.rejected)


def test_duplicate_keys_rejected() -> None:
    parsed = parse_program(_wrap('{"num_warps": 4, "num_warps": 8}, {"num_stages": 1}'), max_candidates=8)
    assert parsed.candidates == [{"num_stages": 1}]
    assert parsed.rejected == [(0, "field 'num_warps' is given more than once")]


def test_too_many_candidates() -> None:
    parsed = parse_program(_wrap(", ".join(f'{{"num_warps": {2**i}}}' for i in range(5))), max_candidates=2)
    assert len(parsed.candidates) == 2
    assert len(parsed.rejected) == 1
    assert "more than 2" in parsed.rejected[0][1]


@pytest.mark.parametrize(
    "text",
    [
        f"{BLOCK_START}\nCANDIDATES = []\n",  # start without end
        f"CANDIDATES = []\n{BLOCK_END}\n",  # end without start
        f"{BLOCK_START}\n{BLOCK_START}\nCANDIDATES = []\n{BLOCK_END}\n{BLOCK_END}\n",  # nested
        f"{BLOCK_START}\nCANDIDATES = []\n{BLOCK_END}\n{BLOCK_START}\nCANDIDATES = []\n{BLOCK_END}\n",  # two
        f"{BLOCK_END}\nCANDIDATES = []\n{BLOCK_START}\n",  # reversed
    ],
    ids=["no_end", "no_start", "nested", "two_blocks", "reversed"],
)
def test_bad_markers(text: str) -> None:
    with pytest.raises(ProgramError) as info:
        parse_program(text, max_candidates=4)
    assert str(info.value)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("CANDIDATES = [", "syntax"),
        ("X = []", "exactly once"),
        ("CANDIDATES = []\nCANDIDATES = []", "exactly once"),
        ("CANDIDATES = []\nimport os", "only"),
        ("CANDIDATES = {'a': 1}", "list literal"),
        ("CANDIDATES = list()", "list literal"),
    ],
)
def test_malformed_block(body: str, needle: str) -> None:
    with pytest.raises(ProgramError, match=needle):
        parse_program(f"{BLOCK_START}\n{body}\n{BLOCK_END}\n", max_candidates=4)


def test_non_utf8_bytes() -> None:
    data = _wrap('{"num_warps": 4}').encode() + b"\xff\xfe\x80"
    with pytest.raises(ProgramError, match="UTF-8"):
        parse_program(data, max_candidates=4)


def test_huge_program() -> None:
    entry = '{"num_warps": 4},\n'
    text = _wrap(entry * (MAX_PROGRAM_CHARS // len(entry) + 10))
    assert len(text) > MAX_PROGRAM_CHARS
    with pytest.raises(ProgramError, match="limit"):
        parse_program(text, max_candidates=4)


def test_render_round_trip() -> None:
    candidates: list[dict[str, object]] = [
        {"block_sizes": [64, None, 16], "num_warps": 4, "pid_type": "flat", "flatten": True},
        {"loop_orders": [[1, 0]], "num_stages": 3, "indexing": ["pointer", "block_ptr"], "x": 0.5},
        {},
    ]
    text = render_program("Candidate configs for 'k'", candidates)
    assert text.count(BLOCK_START) == 1
    assert text.count(BLOCK_END) == 1
    parsed = parse_program(text, max_candidates=8)
    assert parsed.rejected == []
    assert parsed.candidates == candidates


def test_render_round_trip_many() -> None:
    candidates: list[dict[str, object]] = [
        {"block_sizes": [2**i, 2 ** (i % 5)], "num_warps": 2 ** (i % 6)} for i in range(40)
    ]
    assert parse_program(render_program("t", candidates), max_candidates=64).candidates == candidates


def test_module_never_calls_eval_or_exec() -> None:
    source = Path(program.__file__).read_text()
    assert "eval(" not in source.replace("literal_eval(", "")
    assert "exec(" not in source
