"""How the forward pass runs: autocast dtype (`amp`) and memory format (`channels_last`),
resolved and checked once per run for its device and role (training or evaluation), then
handed to the training step, the evaluation loop and the benchmarks (docs/speed.md).

Every figure is fp32 unless the user asks for mixed precision, so that a checkpoint scores the
same on every machine, as in PyTorch's own convention. `amp off` (the default) is fp32
everywhere. `amp auto` takes bf16 for training steps only where it is native (CUDA with bf16
support, CPUs with avx512_bf16 or AMX) and keeps every evaluation fp32; `amp bf16|fp16`
autocast training and evaluation alike. On CPUs without native bf16 the bf16 convolutions fall
back to slow kernels (5-11x slower than fp32 on an AVX-512 CPU without avx512_bf16,
docs/speed.md), so an explicit `amp bf16` there warns.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import ContextManager

import torch
import torch.nn.functional as F

from util.config import ConfigError


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with fast bf16 kernels


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast is fast on `device`, and why (the reason `amp auto` logs)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{device} {'supports' if ok else 'does not support'} bf16"
    if device.type != "cpu":
        return False, f"no bf16 capability check for device type {device.type}"
    found = sorted(cpu_flags() & set(NATIVE_BF16_FLAGS))
    if found:
        return True, f"the CPU has native bf16 ({', '.join(found)})"
    return False, f"the CPU has no native bf16 ({' or '.join(NATIVE_BF16_FLAGS)} missing)"


PRECISION_NAMES = {"off": "fp32", "bf16": "bf16", "fp16": "fp16"}  # resolved amp -> results JSON `precision`


def resolve_amp(amp: str, device: torch.device, training: bool = False) -> tuple[str, str]:
    """Config key `amp` -> (off, bf16 or fp16, why) for one role on `device`. `auto` is bf16
    only for training steps where bf16 is native (CUDA with bf16, CPUs with avx512_bf16/AMX):
    an evaluation stays fp32 so its figures match any machine's; the reason is logged."""
    if amp != "auto":
        return amp, f"amp {amp}" + (" (the default: mixed precision only when asked)"
                                    if amp == "off" else " is set")
    if not training:
        return "off", "amp auto evaluates in fp32 on every machine (amp bf16 or fp16 evaluates in reduced precision)"
    ok, why = native_bf16(device)
    return ("bf16" if ok else "off"), f"amp auto and {why}"


def bf16_slowdown(reps: int = 3) -> float:
    """bf16 / fp32 time of one 3x3 convolution on the CPU (a ~0.1 s probe, interleaved)."""
    x, w = torch.randn(1, 64, 48, 48), torch.randn(64, 64, 3, 3)
    xb, wb = x.bfloat16(), w.bfloat16()
    times = {torch.float32: [], torch.bfloat16: []}
    for _ in range(reps + 1):  # the first round warms both up and is dropped
        for dtype, args in ((torch.float32, (x, w)), (torch.bfloat16, (xb, wb))):
            t = time.perf_counter()
            F.conv2d(*args, padding=1)
            times[dtype].append(time.perf_counter() - t)
    return min(times[torch.bfloat16][1:]) / min(times[torch.float32][1:])


def slow_bf16_warning(device: torch.device) -> str | None:
    """`amp bf16` on a CPU without native bf16: the warning, with the slowdown measured here."""
    ok, why = native_bf16(device)
    if device.type != "cpu" or ok:
        return None
    return (f"amp bf16: {why}, so bf16 convolutions run on slow fallback kernels: one 3x3 conv measured "
            f"{bf16_slowdown():.1f}x slower than fp32 here (a whole step 5-11x, docs/speed.md). Use amp off.")


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of config key `amp` on `device` (None: fp32), checked up front so a
    run fails before any work: fp16 autocast needs CUDA (on the CPU it is slow and
    GradScaler-less), bf16 needs a GPU that supports it."""
    amp = resolve_amp(amp, device)[0]
    if amp == "off":
        return None
    if amp not in AMP_DTYPES:
        raise ConfigError(f"config key 'amp' = {amp!r}: use auto, off, bf16 or fp16")
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"config key 'amp' = 'fp16' needs a CUDA device, but the device is {device}: "
                          "use amp bf16 (CPU autocast) or amp off, or run on a GPU")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"config key 'amp' = 'bf16': {device} has no bf16 support; use amp fp16 or off")
    return AMP_DTYPES[amp]


def autocast(amp: str, device: torch.device) -> ContextManager:
    """Autocast region for the forward pass (a no-op context with amp off). The model's losses
    and the evaluator run their reductions in fp32 (autocast keeps cross-entropy and
    log-softmax in fp32; logits are cast to float before scoring)."""
    dtype = amp_dtype(amp, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def memory_format(channels_last: bool) -> torch.memory_format:
    """Config key `channels_last` -> the memory format for the model and 4-D images."""
    return torch.channels_last if channels_last else torch.contiguous_format


def resolve_channels_last(value: bool | str, device: torch.device) -> bool:
    """Config key `channels_last` -> on/off for this device. `auto` is on for the CPU, where
    oneDNN's NHWC convolutions measured 1.23x per training step and 1.18x per evaluation
    episode over the contiguous layout (docs/speed.md), and off on CUDA, where fp32 NHWC
    gains were not measured."""
    if isinstance(value, bool):
        return value
    if value == "auto":
        return device.type == "cpu"
    return value == "on"


def make_scaler(enabled: bool) -> torch.amp.GradScaler:
    """GradScaler for amp fp16 on CUDA (a transparent no-op otherwise)."""
    return torch.amp.GradScaler("cuda", enabled=enabled)


@dataclass(frozen=True)
class Precision:
    """The `amp` and `channels_last` keys resolved for one device and role (built once per run,
    before logging starts; an impossible setting fails when it is built, before any work).
    `amp` holds the resolved mode, `requested` the config's value, `why` the reason and
    `warning` a slow-bf16 warning: `log_lines()` gives them to the run's first log lines."""

    device: torch.device
    amp: str = "off"
    channels_last: bool | str = False
    training: bool = False
    requested: str = field(default="", compare=False)
    why: str = field(default="", compare=False)
    warning: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels_last", resolve_channels_last(self.channels_last, self.device))
        object.__setattr__(self, "requested", self.requested or self.amp)
        amp, why = resolve_amp(self.amp, self.device, self.training)
        object.__setattr__(self, "amp", amp)
        object.__setattr__(self, "why", self.why or why)
        amp_dtype(self.amp, self.device)
        if self.requested == "bf16" and self.warning is None:
            object.__setattr__(self, "warning", slow_bf16_warning(self.device))

    @classmethod
    def from_config(cls, cfg, device: torch.device, training: bool = False) -> "Precision":
        return cls(device, cfg.amp, cfg.channels_last, training)

    def for_evaluation(self) -> "Precision":
        """The same keys resolved for evaluation (validation during training): `amp auto` is fp32 there."""
        if not self.training:
            return self
        return Precision(self.device, self.requested, self.channels_last, requested=self.requested,
                         warning=self.warning)

    @property
    def name(self) -> str:
        """fp32, bf16 or fp16: what the results JSON records under `precision`."""
        return PRECISION_NAMES[self.amp]

    @property
    def reduced(self) -> bool:
        return self.amp != "off"

    def log_lines(self) -> list[tuple[int, str]]:
        """(level, message) the run logs first: the precision, why, the layout, any warning."""
        role = "training" if self.training else "evaluation"
        layout = "channels_last (NHWC)" if self.channels_last else "contiguous (NCHW)"
        lines = [(logging.INFO, f"{role} precision {self.name} because {self.why}; memory format {layout}")]
        return lines + ([(logging.WARNING, self.warning)] if self.warning else [])

    @property
    def dtype(self) -> torch.dtype | None:
        """Autocast dtype (None: fp32)."""
        return amp_dtype(self.amp, self.device)

    @property
    def memory_format(self) -> torch.memory_format:
        return memory_format(self.channels_last)

    def autocast(self) -> ContextManager:
        """The forward's autocast region (losses and metrics stay fp32)."""
        return autocast(self.amp, self.device)

    def scaler(self):
        """Loss scaler: active only for fp16 autocast."""
        return make_scaler(self.dtype == torch.float16)

    def to_device(self, batch: dict) -> dict:
        """Tensors to the device; with channels_last the 4-D query image goes NHWC as the weights."""
        out = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        if self.channels_last and torch.is_tensor(out.get("query")):
            out["query"] = out["query"].contiguous(memory_format=torch.channels_last)
        return out
