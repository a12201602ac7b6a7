"""What an LLM error means: permanent, transient or a rate limit, and the line that says why.

:func:`classify` runs in OpenEvolve's workers (:mod:`.llm_channel`) on the exception the LLM
client raised, once per HTTP attempt. It reads the ``openai`` client's exception types and the
fields it parses from the response (``status_code``, the body's ``code``, the ``Retry-After``
headers), never the message text: messages differ between OpenAI, vLLM and ollama, and can
carry parts of the key.

- **permanent**: no retry can fix it (401 the key, 403 the key's access, 404 the model or the
  route, 400/413/422 the request itself, 429 ``insufficient_quota``). The search stops asking at
  the first one; :attr:`Fault.cause` names the cause and what to set.
- **transient**: 5xx, 408, 409, time-outs, connection errors, and anything that is not an
  ``openai`` status error (other providers, an endpoint that streams when asked not to). Retried
  with backoff, as OpenAI's own client retries them.
- **rate_limit**: 429 with any other code. Waited out as ``Retry-After`` says; not a failure of
  the LLM.

A 400 whose code is ``context_length_exceeded`` (OpenAI's) is permanent for that prompt only:
:func:`shorter_messages` leaves OpenEvolve's program history out of the prompt, and
:func:`context_cause` names the parts of the prompt and their sizes. Only the standard library
(and ``openai``, where installed) is imported here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
import time
from typing import Any
from typing import Literal

Category = Literal["permanent", "transient", "rate_limit"]

#: The body codes with which a 429 means the account, not the rate: waiting does not help.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
#: The body code OpenAI gives a prompt longer than the model's context.
CONTEXT_CODES = frozenset({"context_length_exceeded"})
#: OpenEvolve's user message: its program history sits between these two headings.
HISTORY_HEADING = "# Program Evolution History\n"
CURRENT_HEADING = "# Current Program\n"
HISTORY_LEFT_OUT = "(left out: the prompt was over the model's context)\n\n"


@dataclass(frozen=True)
class Fault:
    """One LLM error, classified: ``cause`` is a line for the user (no message text, no key)."""

    category: Category
    cause: str
    status: int | None = None
    code: str | None = None
    timeout: bool = False
    context: bool = False  # the prompt is over the model's context
    retry_after_s: float | None = None  # what the endpoint asked to wait (rate limits)


def classify(error: BaseException, *, model: str) -> Fault:
    """The :class:`Fault` an exception of the LLM client stands for (see the module docstring)."""
    try:
        import openai
    except ImportError:  # another provider: no HTTP statuses to read
        openai = None  # type: ignore[assignment]
    timeout_types: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)
    if openai is not None:
        timeout_types += (openai.APITimeoutError,)
    if isinstance(error, timeout_types):
        return Fault("transient", "no answer in time", timeout=True)
    if openai is None or not isinstance(error, openai.APIStatusError):
        return Fault("transient", f"{type(error).__name__} (no HTTP status)")
    status, code = int(error.status_code), _body_code(error)
    said = f"{status} {code}" if code else str(status)
    if status == 429 and code not in QUOTA_CODES:
        return Fault("rate_limit", f"rate limited ({said})", status, code, retry_after_s=retry_after(error))
    if status >= 500 or status in (408, 409):
        return Fault("transient", f"the endpoint failed ({said})", status, code)
    return Fault("permanent", _permanent_cause(status, code, said, model), status, code, context=code in CONTEXT_CODES)


def _body_code(error: Any) -> str | None:
    """The error body's ``code`` (OpenAI: ``invalid_api_key``, ``model_not_found``, ...); a
    number there (vLLM repeats the status) says nothing more and is dropped."""
    code = getattr(error, "code", None)
    return None if code is None or str(code).isdigit() else str(code)


def _permanent_cause(status: int, code: str | None, said: str, model: str) -> str:
    if status == 401:
        return f"the API key was refused ({said}): set OPENAI_API_KEY or HELION_OPENEVOLVE_API_KEY"
    if status == 403:
        return f"the API key may not use model {model!r} ({said}): use a key with access to it, or set HELION_OPENEVOLVE_MODEL"
    if status == 404 and code == "model_not_found":
        return f"the endpoint does not serve model {model!r} ({said}): set HELION_OPENEVOLVE_MODEL to a model it lists"
    if status == 404:
        return (
            f"the endpoint has no model {model!r} or no chat completions route ({said}): check "
            "HELION_OPENEVOLVE_MODEL, and HELION_OPENEVOLVE_API_BASE (its address ending in /v1)"
        )
    if status == 429:
        return f"the API key's account has no quota left ({said}): check its plan and billing"
    if code in CONTEXT_CODES:
        return f"the prompt is over model {model!r}'s context ({said})"
    return (
        f"the endpoint refused the request ({said}): check that model {model!r} takes OpenAI chat "
        "completions with this search's parameters (temperature, max_tokens)"
    )


def retry_after(error: Any) -> float | None:
    """Seconds the response asks to wait: ``retry-after-ms``, else ``retry-after`` (seconds or
    an HTTP date), as OpenAI's client reads them; None when absent or unreadable."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
    value = headers.get("retry-after")
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time()) if value else None
    except (TypeError, ValueError):
        return None


def _split_history(text: str) -> tuple[int, int] | None:
    """Where OpenEvolve's program history lies in a user message (start, end), if it does."""
    start = text.find(HISTORY_HEADING)
    end = text.find(CURRENT_HEADING, start + 1) if start >= 0 else -1
    return (start + len(HISTORY_HEADING), end) if start >= 0 and end > start else None


def shorter_messages(messages: list[dict[str, str]]) -> list[dict[str, str]] | None:
    """``messages`` with OpenEvolve's program history left out of the user messages (the top
    programs, earlier attempts and inspirations: the part of the prompt that grows with the
    search); None when there is none to leave out."""
    out, cut = [], False
    for message in messages:
        text = message.get("content")
        where = _split_history(text) if message.get("role") == "user" and isinstance(text, str) else None
        if where is not None and where[1] - where[0] > len(HISTORY_LEFT_OUT):
            text = f"{text[: where[0]]}{HISTORY_LEFT_OUT}{text[where[1] :]}"  # type: ignore[index]
            message, cut = {**message, "content": text}, True
        out.append(message)
    return out if cut else None


def context_cause(fault: Fault, system_message: str, messages: list[dict[str, str]], *, shortened: bool) -> str:
    """The line for a prompt over the model's context: its parts, their sizes, what shrinks them."""
    history = rest = 0
    for message in messages:
        text = message.get("content")
        if not isinstance(text, str):
            continue
        where = _split_history(text)
        span = where[1] - where[0] if where is not None else 0
        history, rest = history + span, rest + len(text) - span
    parts = f"system message {len(system_message)} chars, program history {history}, current program and task {rest}"
    tried = "; a prompt without the program history was over it too" if shortened else ""
    return (
        f"{fault.cause} ({parts}{tried}): use a model with a longer context, or shrink the prompt "
        "(candidates_per_program; prompt.num_top_programs and prompt.num_diverse_programs in an "
        "OpenEvolve YAML given as config_path; the kernel's source and space are in the system message)"
    )
