"""What every benchmark shares: the machine it ran on and one JSON result file each.

Each ``benchmarks/<name>.py`` measures, prints a human-readable report and
writes ``benchmarks/results/<name>.json`` with :func:`write_result`;
``benchmarks/report.py`` turns those files into the table in
``benchmarks/README.md``. Timings are only compared within one run (ratios,
interleaved A/B rounds): absolute numbers on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    """The processor's name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Where a figure was measured: CPU, cores, memory, GPU, torch, threads, date."""
    import torch

    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gib = float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "gpu": gpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # CPUs differ 3-4x in training speed by these two (bf16 computed natively or not)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": _native_bf16(),
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _native_bf16() -> bool:
    from resnet_tutorial.device import native_bf16

    return native_bf16()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(name: str, result: dict[str, Any], path: str | os.PathLike | None = None) -> Path:
    """Write ``result`` (plus ``benchmark``, ``machine``, ``command``) as JSON; return the path.

    Written to a temporary file and moved into place, so an interrupted run
    never leaves a half-written result for the report to read.
    """
    from resnet_tutorial.results import write_json

    path = Path(path) if path is not None else RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "machine": machine_info(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **result,
    }
    return write_json(path, payload)  # atomic: an interrupted run never leaves half a result
