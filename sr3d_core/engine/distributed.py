"""Data-parallel training across processes started by ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from sr3d_core.runtime import choose_device


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly one-process) run, from torchrun's environment.

    Attributes:
        world: Number of processes.
        rank: This process's rank (0 writes logs and checkpoints).
        local_rank: Its rank on this machine (picks the GPU).
    """

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DistContext":
        """Read ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (a plain process is rank 0 of 1)."""
        env = os.environ
        return cls(int(env.get("WORLD_SIZE", "1")), int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        """This process writes the run's files."""
        return self.rank == 0

    def device(self, requested: str) -> torch.device:
        """The device of this process (``sr3d_core.runtime.choose_device``; ``cuda`` means this process's local GPU):
        ``auto`` without CUDA is the CPU; CUDA asked for but missing falls back to the CPU with a warning."""
        if requested == "auto" and not torch.cuda.is_available():
            return torch.device("cpu")
        dev, warning = choose_device(requested, self.local_rank)
        if warning:
            warnings.warn(warning, stacklevel=2)
        return dev

    def init(self, device: torch.device) -> None:
        """Join the process group of a multi-process run (once)."""
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when there are several processes, else itself."""
        if self.world == 1:
            return model
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in a one-process run)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank (nothing in a one-process run)."""
        if self.world > 1:
            dist.barrier()


def parameter_digest(model: torch.nn.Module) -> float:
    """A position-weighted sum of every parameter: equal on every rank when DDP kept them in step."""
    return float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(model.parameters())))
