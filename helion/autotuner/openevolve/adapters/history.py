"""The history store: what earlier searches of a kernel picked, kept for its next shape or run.

Owns the files under the ``history_dir`` setting (default: ``openevolve-history`` in Helion's
cache folder, ``helion.autotuner.local_cache.get_helion_cache_dir()``): a folder per kernel (its
qualified name and a hash of its source, as Helion's cache key hashes it) and device (backend
and device name), in it one plain JSON file per shape signature of the arguments with the best
picks on that shape (:data:`KEEP_PER_SHAPE`, lowest cost first). Users may read, copy or delete
any of it. :meth:`WarmStart.load` reads the folder when a search starts: each config goes
through the search's own validation (``HelionSpace.validate`` and the backend's viability
check), the best few (nearest shape first, then lowest cost; :data:`MAX_SEEDS` in all, with the
configs Helion's cache holds for this kernel and shape) are measured in the first batch as
``history`` (knowledge, as the LLM's answers: :func:`..loop.stop_rule.knowledge_first`), and the valid
entries go into the system message (:func:`.prompts.history_section`). :meth:`WarmStart.remember` adds
the search's pick. Skipped, each with one log line: an unreadable file or entry, a file of
another kernel or device, a config today's space rejects. The store never fails a search:
every I/O error is caught and logged.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
import hashlib
import inspect
import json
import math
import os
from pathlib import Path
import re
import textwrap
from typing import TYPE_CHECKING

import torch

from . import helion_api

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Mapping
    from collections.abc import Sequence

    import helion

    from .helion_api import PopulationBasedSearch
    from .settings import OpenEvolveSettings

    Validate = Callable[[dict[str, object]], helion.Config]  # the backend's: InvalidCandidate if not

KEEP_PER_SHAPE = 5  # picks kept per shape file, lowest cost first
MAX_SEEDS = 3  # configs from history and Helion's cache added to the first batch, at most
MAX_FILES = 200  # shape files read per search, newest first
FORMAT = 1  # the files' layout; a file of another format is skipped as unreadable
_PREFIX = "OpenEvolveSearch history:"
_TENSOR = re.compile(r"^(\w+)\[([\d,]*)\]$")
_OTHER_KIND = 8.0  # distance per argument that differs in kind, dtype, rank or value


@dataclass(frozen=True)
class HistoryEntry:
    """One search's pick for one shape: an item of a history file's ``entries`` list."""

    config: dict[str, object]
    cost: float  # the pick's latency in ms, measured by that search
    default_cost: float | None  # the default config's latency in ms, same search
    date: str  # when that search ended (UTC, ISO 8601)
    mode: str  # that search's mode: openevolve, fallback or no_llm_answer


@dataclass(frozen=True)
class Known:
    """A history entry whose config today's space accepts, and how far its shape is from ours."""

    shape: tuple[str, ...]
    entry: HistoryEntry
    config: helion.Config
    distance: float


def shape_signature(args: Sequence[object]) -> tuple[str, ...]:
    """``float32[128,64]`` per tensor, ``int=3`` per number, the type's name for anything else."""
    return tuple(map(_arg_signature, args))


def _arg_signature(arg: object) -> str:
    if isinstance(arg, torch.Tensor):
        return f"{str(arg.dtype).removeprefix('torch.')}[{','.join(map(str, arg.shape))}]"
    return f"{type(arg).__name__}={arg!r}" if isinstance(arg, (bool, int, float)) else type(arg).__name__


def shape_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """0 for the same signature; else the sum of ``|log2|`` size ratios over tensor dimensions,
    plus :data:`_OTHER_KIND` per argument that differs in any other way."""
    d = _OTHER_KIND * abs(len(a) - len(b))
    for x, y in zip(a, b, strict=False):
        mx, my = _TENSOR.match(x), _TENSOR.match(y)
        if mx and my and mx[1] == my[1] and mx[2].count(",") == my[2].count(","):
            dims = zip(mx[2].split(","), my[2].split(","), strict=True)
            d += sum(abs(math.log2(max(int(p or 1), 1) / max(int(q or 1), 1))) for p, q in dims)
        elif x != y:
            d += _OTHER_KIND
    return d


def _slug(text: str, limit: int = 100) -> str:
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", text.replace(",", "x")).strip("_") or "_"
    return slug if len(slug) <= limit else f"{slug[: limit - 13]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _entry(item: object) -> HistoryEntry:
    entry = HistoryEntry(**item)  # type: ignore[arg-type]  # TypeError: not a dict, or other fields
    if not isinstance(entry.config, dict) or not math.isfinite(entry.cost):
        raise ValueError("no config, or no finite cost")
    return entry


class HistoryStore:
    """The JSON files of one kernel on one device."""

    def __init__(
        self, root: Path, *, kernel: str, source_sha256: str, device: str, warn: Callable[[str], None]
    ) -> None:
        self.owner = {"kernel": kernel, "source_sha256": source_sha256, "device": device}
        self.folder = root / _slug(f"{kernel}-{source_sha256[:12]}") / _slug(device)
        self.warn = warn

    def path(self, shape: Sequence[str]) -> Path:
        return self.folder / f"{'__'.join(map(_slug, shape))}.json"

    def read(self) -> list[tuple[tuple[str, ...], HistoryEntry]]:
        """Every readable entry of this kernel and device, newest file first."""
        try:
            files = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError as e:
            self.warn(f"{_PREFIX} cannot list {self.folder} ({type(e).__name__}: {e}); starting without it")
            return []
        out: list[tuple[tuple[str, ...], HistoryEntry]] = []
        for path in files[:MAX_FILES]:
            shape, entries = self._load(path)
            out += [(shape, e) for e in entries]
        return out

    def add(self, shape: tuple[str, ...], entry: HistoryEntry) -> None:
        """Add ``entry`` to its shape's file: the :data:`KEEP_PER_SHAPE` lowest costs, one entry
        per config (its newest measurement)."""
        path = self.path(shape)
        try:
            old_shape, old = self._load(path) if path.exists() else ((), [])
            keep = [entry, *(e for e in old if e.config != entry.config and old_shape == shape)]
            head = {"format": FORMAT, **self.owner, "shape": list(shape)}
            # One line per field and per entry: a file to read and diff without a tool.
            text = "{\n" + "".join(f' "{k}": {json.dumps(v)},\n' for k, v in head.items()) + ' "entries": [\n'
            text += ",\n".join(
                f"  {json.dumps(asdict(e), default=str)}" for e in sorted(keep, key=lambda e: e.cost)[:KEEP_PER_SHAPE]
            )
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
            tmp.write_text(text + "\n ]\n}\n")
            os.replace(tmp, path)  # readers see the old file or the new one, never half of one
        except (OSError, TypeError, ValueError) as e:
            self.warn(f"{_PREFIX} could not write {path} ({type(e).__name__}: {e}); the pick is not kept")

    def _load(self, path: Path) -> tuple[tuple[str, ...], list[HistoryEntry]]:
        """A file's shape and readable entries; nothing (logged) if unreadable or foreign."""
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT or not isinstance(data["entries"], list):
                raise ValueError(f"not a history file of format {FORMAT}")
            owner, shape = {k: data[k] for k in self.owner}, tuple(data["shape"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self.warn(f"{_PREFIX} skipping unreadable file {path} ({type(e).__name__}: {e})")
            return (), []
        if owner != self.owner:
            them = f"kernel {owner['kernel']!r} (source {str(owner['source_sha256'])[:12]}) on {owner['device']!r}"
            self.warn(f"{_PREFIX} skipping {path}: it holds {them}, not this kernel and device")
            return (), []
        entries: list[HistoryEntry] = []
        for item in data["entries"]:
            try:
                entries.append(_entry(item))
            except (TypeError, ValueError) as e:
                self.warn(f"{_PREFIX} skipping an unreadable entry of {path} ({type(e).__name__}: {e})")
        return shape, entries


@dataclass
class WarmStart:
    """What one search takes from the store (seeds, the prompt's entries) and gives back."""

    store: HistoryStore | None  # None: history is off, or the kernel's source cannot be read
    shape: tuple[str, ...]
    known: list[Known]  # nearest shape first, then lowest cost
    seeds: list[helion.Config]

    @classmethod
    def load(cls, search: PopulationBasedSearch, settings: OpenEvolveSettings, validate: Validate) -> WarmStart:
        """The store's picks and Helion's cached configs for the search's kernel, validated."""
        shape = shape_signature(search.args)
        store = _store(search, settings) if settings.history else None
        if store is None:
            return cls(None, shape, [], [])
        known: list[Known] = []
        for their_shape, entry in store.read():
            try:
                known.append(Known(their_shape, entry, validate(entry.config), shape_distance(their_shape, shape)))
            except ValueError as e:  # InvalidCandidate: a field or value today's space lacks
                search.log(f"{_PREFIX} skipping a config for {', '.join(their_shape)} that no longer fits: {e}")
        known.sort(key=lambda k: (k.distance, k.entry.cost))
        cached = _helion_cached(search, validate)  # this shape's, after this shape's from history
        ranked = [k.config for k in known if k.distance == 0] + cached + [k.config for k in known if k.distance > 0]
        seeds = list(dict.fromkeys(ranked))[:MAX_SEEDS]
        search.log(
            f"{_PREFIX} {len(known)} earlier picks on {len({k.shape for k in known})} shapes in {store.folder}; "
            f"{len(seeds)} seed configs from them and Helion's cache ({len(cached)} there)"
        )
        return cls(store, shape, known, seeds)

    def remember(self, config: helion.Config, summary: Mapping[str, object]) -> None:
        """Add the search's pick, with the summary's costs and mode."""
        cost, default = summary.get("best_cost"), summary.get("default_cost")
        if self.store is None or not isinstance(cost, float) or not math.isfinite(cost):
            return
        finite_default = default if isinstance(default, float) and math.isfinite(default) else None
        now = datetime.now(timezone.utc)  # noqa: UP017 (datetime.UTC is 3.11+; Helion runs on 3.10)
        date = now.isoformat(timespec="seconds")
        self.store.add(self.shape, HistoryEntry(dict(config.config), cost, finite_default, date, str(summary["mode"])))


def default_root() -> Path:
    """The store's folder when ``history_dir`` is not set: ``openevolve-history`` in Helion's cache."""
    return helion_api.get_helion_cache_dir() / "openevolve-history"


def _store(search: PopulationBasedSearch, s: OpenEvolveSettings) -> HistoryStore | None:
    """The store of the search's kernel and device; None (logged) when the source is unreadable."""
    fn = helion_api.kernel_fn(search)
    try:  # hashed as Helion's cache key hashes a kernel (LocalAutotuneCache._generate_key)
        source = textwrap.dedent(inspect.getsource(fn))  # type: ignore[arg-type]
    except (OSError, TypeError) as e:
        search.log(f"{_PREFIX} off for this kernel: its source cannot be read ({type(e).__name__})")
        return None
    hardware = helion_api.current_hardware(search)
    return HistoryStore(
        Path(s.history_dir) if s.history_dir else default_root(),
        kernel=getattr(fn, "__qualname__", "kernel"),
        source_sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
        device=f"{search.config_spec.backend_name}-{hardware or 'unknown'}",
        warn=search.log.warning,
    )


def _helion_cached(search: PopulationBasedSearch, validate: Validate) -> list[helion.Config]:
    """The configs Helion's cache holds for this kernel, device and specialization, read by the
    search base's own method that Helion's ``FROM_BEST_AVAILABLE`` initial population uses."""
    try:
        n = min(MAX_SEEDS, int(search.settings.autotune_best_available_max_configs))
        entries = helion_api.find_similar_cached_configs(search, n) if n > 0 else []
    except Exception as e:  # a remote cache's error too: the warm start is optional
        search.log.warning(f"{_PREFIX} Helion's cache could not be read ({type(e).__name__}); going on without it")
        return []
    out: list[helion.Config] = []
    for entry in entries:
        try:
            out.append(validate(dict(entry.config.config)))
        except ValueError as e:
            search.log(f"{_PREFIX} skipping a config of Helion's cache that no longer fits: {e}")
    return out
