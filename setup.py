"""Build hooks that pyproject.toml cannot express: ship the public entry module inside the
installed ``helion/autotuner/`` folder and the ``.pth`` startup hook at the top of site-packages.
Neither ``helion/__init__.py`` nor ``helion/autotuner/__init__.py`` is shipped."""

from __future__ import annotations

from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).parent
        out = Path(self.build_lib)
        (out / "helion" / "autotuner").mkdir(parents=True, exist_ok=True)
        shutil.copy(
            root / "helion" / "autotuner" / "openevolve_tuner.py", out / "helion" / "autotuner" / "openevolve_tuner.py"
        )
        shutil.copy(root / "helion_openevolve.pth", out / "helion_openevolve.pth")


setup(cmdclass={"build_py": BuildPy})
