"""Stand-in LLM: a local OpenAI-compatible server for the tests, examples and benchmarks.

This module owns a stdlib-only HTTP server (``StandinLLM``) that answers the two OpenAI APIs
the way an LLM would answer a config search, in place of a real LLM. It replaces only the LLM
transport; nothing here imports torch or helion.

- ``POST {api_base}/chat/completions`` (OpenAI's chat completions: OpenEvolve, hence this
  plugin's search): ``messages`` in, a ``chat.completion`` out.
- ``POST {api_base}/responses`` (OpenAI's Responses API: Helion's own ``LLMGuidedSearch`` and
  ``LLMSeededLFBOTreeSearch`` with ``provider="openai"``): ``instructions`` and ``input`` (a
  string, or messages whose content is a string or ``input_text`` parts) in, a ``response``
  object (``output`` message with one ``output_text`` part, ``output_text``, ``usage``) out.
- ``GET {api_base}/models`` lists ``standin`` and ``standin:<mode>``.

Where the data comes from: everything is read from the request itself. The answer text is
written by ``standin_answers.propose`` from the system and user text, in the dialect of the
prompt (a program with a ``CANDIDATES`` list for OpenEvolve's prompts, ``{"configs":[...]}``
JSON for Helion's), whichever API carried it. Randomness comes only from a seeded
``random.Random``.

Modes (server attribute ``mode``, or per request through the model name ``standin:<mode>``):

- text: ``neighbors``, ``random``, ``knowing`` (the ``known_configs`` first, then their
  neighbours), ``invalid``, ``garbage``, ``empty``, ``huge``, ``code`` (see standin_answers);
- transport: ``error500``, ``error429`` (with ``Retry-After: 1``), ``error401`` (OpenAI's
  ``invalid_api_key``), ``error404`` (OpenAI's ``model_not_found``), ``hang`` (no answer until
  the server stops), ``drop`` (connection closed);
- faults over a text mode BASE (default ``neighbors``): ``fail_after:N[:BASE]`` answers its
  first N requests in BASE, then HTTP 500 on every later one; ``error500_alternate[:BASE]``
  answers its odd-numbered requests (1st, 3rd, ...) in BASE and the even ones with HTTP 500;
  ``error429_alternate[:BASE]`` the same with HTTP 429 (``Retry-After: 1``);
  ``context:N[:BASE]`` answers a prompt of at most N characters in BASE and a longer one with
  HTTP 400 ``context_length_exceeded``. Each fault mode counts its own requests.

Errors have OpenAI's body (``{"error": {"message", "type", "param", "code"}}``). With ``api_key``
set, a request without ``Authorization: Bearer <api_key>`` gets HTTP 401 ``invalid_api_key``, as
OpenAI answers a wrong key.

CLI: ``python examples/standin_llm.py --port 8011 [--mode MODE] [--known FILE] [--api-key KEY]``
(``--known``: a JSON list of configs, or a run record ``.jsonl`` whose best ``ok`` evaluations are
known).
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
from pathlib import Path
import random
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from standin_answers import TEXT_MODES
from standin_answers import propose

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Sequence
    from typing import Self

Config = dict[str, Any]

TRANSPORT_MODES = ("error500", "error429", "error401", "error404", "hang", "drop")
MODES = TEXT_MODES + TRANSPORT_MODES
FAULT_MODES = ("fail_after", "error500_alternate", "error429_alternate", "context")

HANG_LIMIT_S = 600.0
RECORD_LIMIT = 200
KNOWN_FROM_RECORD = 4


class Mode(NamedTuple):
    """A parsed mode: its name, the text mode a fault mode answers in, fail_after's or
    context's N."""

    name: str
    base: str
    limit: int = 0


def parse_mode(text: str) -> Mode:
    """``neighbors`` / ``error500`` / ``fail_after:3`` / ``fail_after:3:knowing`` /
    ``error500_alternate[:BASE]`` / ``context:4000[:BASE]`` as a Mode; ValueError for anything else."""
    name, *args = text.split(":")
    if name in MODES and not args:
        return Mode(name, name)
    if name in ("fail_after", "context") and args and args[0].isdigit() and len(args) <= 2:
        base = args[1] if len(args) == 2 else "neighbors"
        if base in TEXT_MODES:
            return Mode(name, base, int(args[0]))
    if name in ("error500_alternate", "error429_alternate") and len(args) <= 1:
        base = args[0] if args else "neighbors"
        if base in TEXT_MODES:
            return Mode(name, base)
    raise ValueError(
        f"unknown standin mode {text!r}; expected one of {MODES}, fail_after:N[:BASE], context:N[:BASE], "
        f"error500_alternate[:BASE] or error429_alternate[:BASE] with BASE one of {TEXT_MODES}"
    )


def load_known(path: str | Path, top: int = KNOWN_FROM_RECORD) -> list[Config]:
    """Known configs from a file: a JSON list of configs, or a run record (``.jsonl``) whose
    ``ok`` evaluations with the lowest ``cost`` are taken (at most ``top``, fastest first)."""
    text = Path(path).read_text()
    if str(path).endswith(".jsonl"):
        return _best_of_record(text, top)
    data = json.loads(text)
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValueError(f"{path}: expected a JSON list of configs (objects)")
    return data


def _best_of_record(text: str, top: int) -> list[Config]:
    measured: list[tuple[float, Config]] = []
    for line in text.splitlines():
        entry = json.loads(line) if line.strip() else {}
        cost, config = entry.get("cost"), entry.get("config")
        ok = entry.get("kind") == "evaluation" and entry.get("status") == "ok"
        if ok and isinstance(cost, (int, float)) and math.isfinite(cost) and isinstance(config, dict):
            measured.append((float(cost), config))
    out: list[Config] = []
    for _, config in sorted(measured, key=lambda pair: pair[0]):
        if config not in out:
            out.append(config)
    return out[:top]


# --------------------------------------------------------------------------
# The two APIs: request bodies in, response objects out
# --------------------------------------------------------------------------


def _text(content: object) -> str:
    """Message content as text (plain string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Exchange(NamedTuple):
    """What a request says, whichever API carried it."""

    system: str  # system and developer text, joined
    users: list[str]  # every user message, in order
    messages: list[dict[str, Any]]  # what the server records
    chars: int  # prompt characters (usage counts a token per 4)


def _exchange(messages: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> Exchange:
    system, users, chars = [], [], 0
    for message in messages:
        role, text = message.get("role"), _text(message.get("content"))
        chars += len(text)
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            users.append(text)
    return Exchange("\n\n".join(s for s in system if s), users, recorded, chars)


def split_messages(body: dict[str, Any]) -> Exchange:
    """A chat-completions request: ``messages`` (and a ``system`` string, if any)."""
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    extra = [{"role": "system", "content": body["system"]}] if body.get("system") else []
    return _exchange(extra + [m for m in messages if isinstance(m, dict)], messages)


def split_input(body: dict[str, Any]) -> Exchange:
    """A Responses request: ``instructions`` (system text) and ``input``, a string (one user
    message) or a list of items, of which messages (``role`` and ``content``) count."""
    items = body.get("input")
    items = [{"role": "user", "content": items}] if isinstance(items, str) else items
    messages = [{"role": "system", "content": _text(body.get("instructions"))}] if body.get("instructions") else []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type", "message") == "message":
            messages.append({"role": item.get("role", "user"), "content": _text(item.get("content"))})
    return _exchange(messages, messages)


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


def response(model: str, text: str, prompt_chars: int, number: int) -> dict[str, Any]:
    """An OpenAI Responses ``response`` object with one assistant message."""
    usage = {"input_tokens": prompt_chars // 4, "output_tokens": len(text) // 4}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    part = {"type": "output_text", "text": text, "annotations": []}
    message = {"type": "message", "id": f"msg_standin_{number}", "status": "completed", "role": "assistant"}
    return {
        "id": f"resp_standin_{number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [{**message, "content": [part]}],
        "output_text": text,
        "usage": usage,
    }


class Api(NamedTuple):
    """One OpenAI API: the path suffix it answers, how to read a request, how to answer."""

    path: str
    split: Callable[[dict[str, Any]], Exchange]
    answer: Callable[[str, str, int, int], dict[str, Any]]


APIS = (Api("/chat/completions", split_messages, completion), Api("/responses", split_input, response))


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


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

    def reply_error(
        self, status: int, message: str, headers: dict[str, str] | None = None, *, code: str | None = None
    ) -> None:
        """An error with OpenAI's body; ``code`` is OpenAI's (``invalid_api_key``, ...), else the status."""
        error_type = "invalid_request_error" if code else "standin_error"
        payload = {"error": {"message": message, "type": error_type, "param": None, "code": code or status}}
        self.reply_json(status, payload, headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            ids = ["standin", *(f"standin:{m}" for m in (*MODES, "error500_alternate", "error429_alternate"))]
            data = [{"id": i, "object": "model", "created": 0, "owned_by": "standin"} for i in ids]
            self.reply_json(200, {"object": "list", "data": data})
        else:
            self.reply_error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0].rstrip("/")
        api = next((a for a in APIS if path.endswith(a.path)), None)
        if api is None:
            self.reply_error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.reply_error(400, "request body is not JSON")
            return
        self.server.owner.handle(self, api, body if isinstance(body, dict) else {})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: StandinLLM

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet for clients that hang up early; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class StandinLLM:
    """OpenAI-compatible stand-in LLM server; see the module docstring for APIs and modes."""

    def __init__(
        self,
        mode: str = "neighbors",
        latency_s: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        known_configs: Sequence[Config] = (),
        api_key: str | None = None,
    ) -> None:
        if parse_mode(mode).base == "knowing" and not known_configs:
            raise ValueError("mode 'knowing' needs known_configs")
        self.mode = mode
        self.api_key = api_key  # None: any key (or none) is accepted
        self.latency_s = latency_s
        self.host = host
        self.port = port
        self.known_configs = [dict(c) for c in known_configs]
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._requests = 0
        self._fault_counts: dict[str, int] = {}
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
        """Number of requests received (both APIs)."""
        with self._lock:
            return self._requests

    @property
    def prompts(self) -> list[list[dict[str, Any]]]:
        """Message lists of the last RECORD_LIMIT requests (a Responses request's
        ``instructions`` first, as a system message; its contents as text)."""
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

    def _answer_mode(self, text: str, prompt_chars: int) -> str:
        """The text or transport mode this request gets; a fault mode counts it first."""
        mode = parse_mode(text)
        if mode.name not in FAULT_MODES:
            return mode.name
        if mode.name == "context":
            return "error400_context" if prompt_chars > mode.limit else mode.base
        with self._lock:
            count = self._fault_counts[text] = self._fault_counts.get(text, 0) + 1
        failing = count > mode.limit if mode.name == "fail_after" else count % 2 == 0
        return ("error429" if mode.name == "error429_alternate" else "error500") if failing else mode.base

    def _sleep(self, seconds: float) -> bool:
        """Sleep, interruptible by stop(); True when the server is stopping."""
        return self.stopping.wait(seconds) if seconds > 0 else self.stopping.is_set()

    def handle(self, handler: _Handler, api: Api, body: dict[str, Any]) -> None:
        """Answer one request of either API according to its mode."""
        exchange = api.split(body)
        number, rng = self._record(exchange.messages)
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            handler.reply_error(401, "standin: incorrect API key provided", code="invalid_api_key")
            return
        try:
            mode = self._answer_mode(self.mode_for(body.get("model")), exchange.chars)
        except ValueError as e:
            handler.reply_error(400, str(e))
            return
        if self._sleep(self.latency_s) or mode == "drop":
            handler.close_connection = True
            return
        transport = _TRANSPORT.get(mode)
        if transport is not None:
            transport(self, handler)
            return
        text = propose(exchange.system, exchange.users, mode, rng, self.known_configs)
        self._record_response(text)
        handler.reply_json(200, api.answer(str(body.get("model", "standin")), text, exchange.chars, number))


def _reply_500(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(500, "standin: simulated server error")


def _reply_429(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(429, "standin: simulated rate limit", {"Retry-After": "1"})


def _reply_401(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(401, "standin: incorrect API key provided", code="invalid_api_key")


def _reply_404(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(404, "standin: the model does not exist", code="model_not_found")


def _reply_400_context(_llm: StandinLLM, handler: _Handler) -> None:
    handler.reply_error(400, "standin: the prompt is over the context", code="context_length_exceeded")


def _hang(llm: StandinLLM, handler: _Handler) -> None:
    """Answer nothing until the server stops (at most HANG_LIMIT_S), then drop."""
    deadline = time.monotonic() + HANG_LIMIT_S
    while time.monotonic() < deadline and not llm.stopping.wait(0.05):
        pass
    handler.close_connection = True


_TRANSPORT: dict[str, Callable[[StandinLLM, _Handler], None]] = {
    "error500": _reply_500,
    "error429": _reply_429,
    "error401": _reply_401,
    "error404": _reply_404,
    "error400_context": _reply_400_context,
    "hang": _hang,
}


def _mode_arg(text: str) -> str:
    try:
        parse_mode(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def main(argv: list[str] | None = None) -> None:
    """CLI: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible stand-in LLM server (chat completions, Responses)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument(
        "--mode", type=_mode_arg, default=None, help="default: knowing with --known, else neighbors (module docstring)"
    )
    parser.add_argument(
        "--known", default=None, help="a JSON list of configs, or a run record .jsonl (its best ok ones)"
    )
    parser.add_argument("--known-top", type=int, default=KNOWN_FROM_RECORD, help="configs taken from a run record")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="answer HTTP 401 to requests without this key")
    args = parser.parse_args(argv)
    known = load_known(args.known, args.known_top) if args.known else []
    mode = args.mode or ("knowing" if args.known else "neighbors")
    try:
        llm = StandinLLM(
            mode, args.latency, args.seed, args.host, args.port, known_configs=known, api_key=args.api_key
        ).start()
    except ValueError as e:
        parser.error(str(e))
    print(f"{llm.url} (mode {mode}, {len(known)} known configs)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        llm.stop()


if __name__ == "__main__":
    main()
