"""Startup hook (loaded by ``helion_openevolve.pth``): registers the OpenEvolve search.

It costs next to nothing at interpreter start: it only puts a finder on ``sys.meta_path``
that waits for ``helion.autotuner`` to be imported, lets Helion's own loader run it, and then
adds ``OpenEvolveTuner``/``OpenEvolveSearch`` to ``helion.autotuner.search_algorithms``. No
torch or helion import happens unless the user's program imports Helion itself. A failure to
register is a warning, never an error in the user's program.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
import warnings

_TARGET = "helion.autotuner"


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._inner.exec_module(module)
        try:
            from helion.autotuner.openevolve_tuner import register

            register()
        except Exception as e:  # never break `import helion` over our registration
            warnings.warn(
                f"helion-openevolve: could not register OpenEvolveTuner: {type(e).__name__}: {e}", stacklevel=2
            )


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def install() -> None:
    if _TARGET in sys.modules:  # imported before the hook: register right away
        from helion.autotuner.openevolve_tuner import register

        register()
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
