"""Where to compute and in what precision: one place for the device and the mixed-precision policy.

``amp`` (automatic mixed precision) is spelled the same everywhere in the package
and on the command line, by the names of :data:`AMP_CHOICES` (``None`` and
``False`` are accepted as the Python spellings of ``"auto"`` and ``"off"``;
:func:`amp_name` turns any spelling into the name, and configs store the name):

* ``"auto"`` (``None``): bf16 (or fp16) autocast on CUDA GPUs, full fp32 on CPU and MPS;
* ``"off"`` (``False``): full fp32;
* ``"bf16"``, ``"fp16"`` (CUDA only): that autocast dtype;
* ``"fast"``: what trains fastest here (:func:`fastest_amp`): bf16 on CPUs that
  compute bf16 natively (AVX512-BF16 / AMX), off on other CPUs, auto on GPUs.

Taught in lesson 00 (the device) and lesson 07 (mixed precision).
"""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

import torch

def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """``prefer`` if given, else the best available: CUDA, then Apple MPS, then CPU.

    Lessons: 00, 07.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for but torch.cuda.is_available() is False; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


AMP_CHOICES = ("auto", "off", "bf16", "fp16", "fast")


def amp_name(amp: Any) -> str:
    """The canonical name of an ``amp`` setting: one of :data:`AMP_CHOICES`.

    ``None`` is ``"auto"`` and ``False`` is ``"off"`` (the Python spellings);
    anything else raises a ValueError that lists the choices.
    """
    if amp is None:
        return "auto"
    if amp is False:
        return "off"
    if isinstance(amp, str) and amp in AMP_CHOICES:
        return amp
    raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)} (or None = auto, False = off), got {amp!r}")


def autocast_dtype(amp: Any, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype that ``amp`` means on ``device``, or ``None`` for full fp32.

    ``"auto"``: bf16 on CUDA GPUs that support it, else fp16 on CUDA; off on
    CPU and MPS (bf16 on a CPU is opt-in, ``"bf16"``, or ``"fast"`` where native).
    """
    name, device = amp_name(amp), torch.device(device)
    if name == "fast":
        name = amp_name(fastest_amp(device))
    if name == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name == "off":
        return None
    if name == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA device; on a CPU use amp='bf16' (or 'fast')")
    return torch.bfloat16 if name == "bf16" else torch.float16


def fastest_amp(device: str | torch.device) -> str:
    """The mixed precision that trains fastest here, by its canonical name: ``"auto"`` on GPUs,
    ``"bf16"`` on CPUs with native bfloat16 arithmetic (AVX512-BF16 / AMX), ``"off"`` on other CPUs.

    On a 2-core AVX512-BF16 CPU bf16 autocast roughly doubles ResNet training
    speed at the same test accuracy (benchmarks/throughput.py); without native
    support it would be emulated and slower than fp32 (5-12x for ResNets).
    This is what ``amp="fast"`` means.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return "auto"
    return "bf16" if native_bf16() else "off"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op context for ``None`` (fp32)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads inside the block, then restore the previous count.

    Tiny nets (an explorer's 128 × 64 MLP) compute in milliseconds on one
    thread; with more, every small op waits for all of them, and on a busy
    2-core machine that wait made one redraw take seconds
    (``benchmarks/explorer_latency.py``). One thread or two give the same numbers.
    """
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (oneDNN's check: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """One line that says what a timing was measured on: CPU, cores, threads, vector ISA, bf16, GPU.

    CPUs differ by a factor of 3-4 in training speed (native bf16 or not), so
    every reported timing carries this line.
    """
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"{cpu_name()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
            f"{torch.backends.cpu.get_cpu_capability()}, native bf16 {'yes' if native_bf16() else 'no'}{gpu}")
