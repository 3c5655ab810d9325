"""Where this process stands among the processes of a data-parallel launch.

``accelerate launch --num_processes N -m clearbench ...`` (GPUs) or ``torchrun
--nproc_per_node N -m clearbench ...`` (CPUs, gloo backend) start N copies of a command; each
asks :func:`process_state` for its rank. A plain ``clearbench`` call is process 0 of 1, so the
same code runs unchanged on one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object


def check_device(device: str, option: str = "--device", *, here: bool = True) -> None:
    """Refuse a ``device`` that is not cpu, mps, cuda or cuda:N, or (``here``) that this
    machine lacks, naming ``option``. A dry run plans for another machine: ``here=False``."""
    kind, _, index = device.partition(":")
    if kind in ("cpu", "mps") and not index:
        return
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"{option} {device}: expected cpu, cuda, cuda:N or mps")
    if not here:
        return
    if not torch.cuda.is_available():
        why = ("was built without CUDA" if torch.version.cuda is None
               else "finds no usable GPU")
        raise ValueError(f"{option} {device}: this torch ({torch.__version__}) {why}; use cpu, "
                         "or install a CUDA build of torch")
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"{option} {device}: this machine has {torch.cuda.device_count()} "
                         "GPU(s), numbered from 0")


def process_state(device: str = "cpu") -> PartialState:
    """The launch's process state (created once per process); CPU processes use gloo."""
    return PartialState(cpu=device == "cpu")


def process_device(device: str, state: PartialState) -> str:
    """``cuda`` becomes this process's own GPU when several processes share a machine."""
    if device == "cuda" and state.num_processes > 1:
        return f"cuda:{state.local_process_index}"
    return device


@dataclass(frozen=True)
class Shard:
    """This process's share of some work: items ``rank``, ``rank + world``, ... of a list."""

    rank: int = 0
    world: int = 1

    def take(self, count: int) -> range:
        return range(self.rank, count, self.world)

    def gather(self, mine: dict[int, Any]) -> dict[int, Any]:
        """Every process's ``{index: result}`` merged (all processes get the whole dict)."""
        if self.world == 1:
            return dict(mine)
        merged: dict[int, Any] = {}
        for part in gather_object([mine]):
            merged.update(part)
        return merged


ONE_PROCESS = Shard()


def shard_of(state: PartialState) -> Shard:
    return Shard(state.process_index, state.num_processes)
