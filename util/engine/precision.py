"""How the forward pass runs: autocast dtype (`amp`) and memory format (`channels_last`),
resolved and checked once per run for its device, then handed to the training step, the
evaluation loop and the benchmarks (docs/speed.md)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

from util.config import ConfigError


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of config key `amp` on `device` (None: fp32), checked up front so a
    run fails before any work: fp16 autocast needs CUDA (on the CPU it is slow and
    GradScaler-less), bf16 needs a GPU that supports it."""
    if amp == "off":
        return None
    if amp not in AMP_DTYPES:
        raise ConfigError(f"config key 'amp' = {amp!r}: use off, bf16 or fp16")
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


def make_scaler(enabled: bool) -> torch.amp.GradScaler:
    """GradScaler for amp fp16 on CUDA (a transparent no-op otherwise)."""
    return torch.amp.GradScaler("cuda", enabled=enabled)


@dataclass(frozen=True)
class Precision:
    """The `amp` and `channels_last` keys resolved for one device (built once per run; an
    impossible setting fails when it is built, before any work)."""

    device: torch.device
    amp: str = "off"
    channels_last: bool = False

    def __post_init__(self) -> None:
        amp_dtype(self.amp, self.device)

    @classmethod
    def from_config(cls, cfg, device: torch.device) -> "Precision":
        return cls(device, cfg.amp, cfg.channels_last)

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
