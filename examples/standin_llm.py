"""Stand-in LLM: a local OpenAI-compatible chat server for the tests, examples and benchmarks.

This module owns a stdlib-only HTTP server (``StandinLLM``) that answers
``POST .../chat/completions`` the way an LLM would answer the OpenEvolve
autotuner, plus the pure function ``propose`` that writes those answers.
It replaces only the LLM transport; nothing here imports torch or helion.

Where the data comes from: everything is read from the request itself.
The system message supplies the search space (``## Search space`` JSON
block), the default config (``## Default config`` JSON block) and the batch
size (``Propose N candidates``).  The user message supplies the current
program (a ```python block holding ``CANDIDATES = [...]``) and optionally a
``BEST_CONFIG_JSON: {...}`` feedback line, which is used as the anchor for
new proposals.  Randomness comes only from a seeded ``random.Random``.

Behaviour modes (server attribute ``mode`` or per request via the model name
``standin:<mode>``): neighbors, random, invalid, garbage, empty, huge, code,
error500, error429, hang, drop.

CLI: ``python examples/standin_llm.py --port 8011``.
"""

from __future__ import annotations

import argparse
import ast
import http.server
import json
import random
import re
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

Config = dict[str, Any]
Spec = dict[str, Any]

TEXT_MODES = ("neighbors", "random", "invalid", "garbage", "empty", "huge", "code")
TRANSPORT_MODES = ("error500", "error429", "hang", "drop")
MODES = TEXT_MODES + TRANSPORT_MODES

DEFAULT_BATCH = 4
MAX_BATCH = 256
HANG_LIMIT_S = 600.0
HUGE_BYTES = 5 * 1024 * 1024
RECORD_LIMIT = 200
GARBAGE_TEXT = "I think you should try bigger tiles!!!"
CODE_LIST = "CANDIDATES = [__import__('os').system('touch /tmp/pwned_standin'), (lambda: 1)(), {\"num_warps\": 4}]"
_DIFF_MARK = "<<<<<<< SEARCH"
_LIST_START = re.compile(r"\bCANDIDATES\s*=\s*\[")
_CURRENT = re.compile(r"#\s*Current Program\s*\n```[^\n]*\n(.*?)```", re.DOTALL)
_FENCE = re.compile(r"```python[^\n]*\n(.*?)```", re.DOTALL)
_BEST = re.compile(r"BEST_CONFIG_JSON:\s*(\{.*\})[ \t]*$", re.MULTILINE)
_BATCH = re.compile(r"Propose (\d+) candidates")


# --------------------------------------------------------------------------
# Prompt parsing
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


def _close_bracket(text: str, open_at: int) -> int | None:
    """Index just past the bracket matching ``text[open_at]``, skipping strings."""
    depth, quote, i = 0, "", open_at
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


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
# Search-space specs
# --------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_pow2(value: object) -> bool:
    return _is_int(value) and value > 0 and value & (value - 1) == 0  # type: ignore[operator]


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


def _neighbors(space: dict[str, Spec], default: Config, user: str, n: int, rng: random.Random) -> list[Config]:
    anchors = [_sanitize(space, a, rng) for a in _anchors(user, default)]
    seen = {_key(_sparse(a, default, set())) for a in anchors}
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


class Prompt(NamedTuple):
    """What a request asks for, parsed from its system and user text."""

    space: dict[str, Spec]
    default: Config
    user: str
    n: int


def parse_prompt(system: str, user: str) -> Prompt:
    """Search space, default config and batch size from the system text."""
    space = _json_section(system, "Search space")
    default = _json_section(system, "Default config")
    return Prompt(
        space=space if isinstance(space, dict) else {},
        default=default if isinstance(default, dict) else {},
        user=user,
        n=batch_size(system),
    )


def _listing(mode: str, prompt: Prompt, rng: random.Random) -> str:
    space, default, n = prompt.space, prompt.default, prompt.n
    if mode == "code":
        return CODE_LIST
    if mode == "random":
        return render_candidates(_random(space, default, n, rng))
    if mode == "invalid":
        return render_candidates(_invalid(space, n, rng))
    found = _neighbors(space, default, prompt.user, n, rng)
    listing = render_candidates(found or _anchors(prompt.user, default)[:n])
    return _huge_listing(listing) if mode == "huge" else listing


def propose(system: str, user: str, mode: str, rng: random.Random) -> str:
    """The assistant text for a text mode (see TEXT_MODES)."""
    if mode == "garbage":
        return GARBAGE_TEXT
    if mode == "empty":
        return ""
    if mode not in TEXT_MODES:
        raise ValueError(f"not a text mode: {mode!r}")
    listing = _listing(mode, parse_prompt(system, user), rng)
    render = _diff if _DIFF_MARK in system or _DIFF_MARK in user else _full_rewrite
    return render(current_program(user), listing)


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


def _text(content: object) -> str:
    """Message content as text (plain string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def split_messages(body: dict[str, Any]) -> tuple[str, str, int]:
    """(system text, last user text, total prompt characters) of a chat request."""
    messages = body.get("messages") or []
    system = [_text(body.get("system"))]
    users = [""]
    for message in messages:
        role, text = message.get("role"), _text(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            users.append(text)
    chars = sum(len(_text(m.get("content"))) for m in messages)
    return "\n\n".join(s for s in system if s), users[-1], chars


def completion(model: str, text: str, prompt_chars: int, number: int) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object."""
    usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(text) // 4}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": f"chatcmpl-standin-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        """Quiet."""

    def reply_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def reply_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        payload = {"error": {"message": message, "type": "standin_error", "code": status}}
        self.reply_json(status, payload, headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            ids = ["standin", *(f"standin:{m}" for m in MODES)]
            data = [{"id": i, "object": "model", "created": 0, "owned_by": "standin"} for i in ids]
            self.reply_json(200, {"object": "list", "data": data})
        else:
            self.reply_error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self.reply_error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.reply_error(400, "request body is not JSON")
            return
        self.server.owner.handle_chat(self, body if isinstance(body, dict) else {})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: StandinLLM

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet for clients that hang up early; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class StandinLLM:
    """OpenAI-compatible stand-in LLM server; see the module docstring for modes."""

    def __init__(
        self,
        mode: str = "neighbors",
        latency_s: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.latency_s = latency_s
        self.host = host
        self.port = port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._requests = 0
        self._prompts: list[list[dict[str, Any]]] = []
        self._responses: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread."""
        if self._server is not None:
            return self
        self.stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="standin-llm",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes sleeping/hanging handlers without waiting for them."""
        self.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The api_base for OpenAI clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    # -- records -----------------------------------------------------------

    @property
    def requests(self) -> int:
        """Number of chat-completion requests received."""
        with self._lock:
            return self._requests

    @property
    def prompts(self) -> list[list[dict[str, Any]]]:
        """Message lists of the last RECORD_LIMIT requests."""
        with self._lock:
            return list(self._prompts)

    @property
    def responses(self) -> list[str]:
        """Texts of the last RECORD_LIMIT successful responses."""
        with self._lock:
            return list(self._responses)

    def _record(self, messages: list[dict[str, Any]]) -> tuple[int, random.Random]:
        with self._lock:
            self._requests += 1
            self._prompts = [*self._prompts[-(RECORD_LIMIT - 1) :], messages]
            return self._requests, random.Random(self._rng.getrandbits(64))

    def _record_response(self, text: str) -> None:
        with self._lock:
            self._responses = [*self._responses[-(RECORD_LIMIT - 1) :], text]

    # -- request handling --------------------------------------------------

    def mode_for(self, model: object) -> str:
        """Mode named by the request's model (``standin:<mode>``), else self.mode."""
        if isinstance(model, str) and model.startswith("standin:"):
            return model.split(":", 1)[1]
        return self.mode

    def _sleep(self, seconds: float) -> bool:
        """Sleep, interruptible by stop(); True when the server is stopping."""
        return self.stopping.wait(seconds) if seconds > 0 else self.stopping.is_set()

    def handle_chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        """Answer one chat-completion request according to its mode."""
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        number, rng = self._record(messages)  # type: ignore[arg-type]
        mode = self.mode_for(body.get("model"))
        if self._sleep(self.latency_s) or mode == "drop":
            handler.close_connection = True
            return
        transport = _TRANSPORT.get(mode)
        if transport is not None:
            transport(self, handler)
            return
        if mode not in TEXT_MODES:
            handler.reply_error(400, f"unknown standin mode {mode!r}")
            return
        system, user, chars = split_messages(body)
        text = propose(system, user, mode, rng)
        self._record_response(text)
        handler.reply_json(200, completion(str(body.get("model", "standin")), text, chars, number))


def _reply_500(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(500, "standin: simulated server error")


def _reply_429(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(429, "standin: simulated rate limit", {"Retry-After": "1"})


def _hang(llm: StandinLLM, handler: _Handler) -> None:
    """Answer nothing until the server stops (at most HANG_LIMIT_S), then drop."""
    deadline = time.monotonic() + HANG_LIMIT_S
    while time.monotonic() < deadline and not llm.stopping.wait(0.05):
        pass
    handler.close_connection = True


_TRANSPORT: dict[str, Callable[[StandinLLM, _Handler], None]] = {
    "error500": _reply_500,
    "error429": _reply_429,
    "hang": _hang,
}


def main(argv: list[str] | None = None) -> None:
    """CLI: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible stand-in LLM server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--mode", default="neighbors", choices=MODES)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    llm = StandinLLM(args.mode, args.latency, args.seed, args.host, args.port).start()
    print(llm.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        llm.stop()


if __name__ == "__main__":
    main()
