"""GPU tests: the fault injection run of ``fault_injection_gpu.py`` as a collected test.

A real tuning run on a CUDA GPU (Triton backend) over a kernel whose tunable ``fault`` makes
configs crash (illegal memory access), give wrong results, fail to compile or compile past the
time-out: each must be recorded as a failure, never picked, and the tuned kernel must be
correct. Marked ``gpu`` and skipped on a machine without a CUDA GPU; on a GPU host:
``python -m pytest -m gpu test``.

What this adds is Helion producing those statuses on real hardware. The search's side of every
one of them runs on the CPU too, in ``test_helion_failures.py``: wrong results through Helion's
real accuracy check, and a crash (``error``) and a compile time-out (``timeout``) as Helion's
benchmark path reports them, each recorded with its status and reason, costing inf, never picked.
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (Triton backend); none found"),
]


def test_gpu_faults_are_recorded_as_failures_and_never_picked(tmp_path: Path) -> None:
    script = Path(__file__).with_name("fault_injection_gpu.py")
    proc = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-4000:]
    assert "all fault checks passed" in proc.stdout
