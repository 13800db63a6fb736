"""Which CPU this is: the model, the cores this process may use, and the flags that decide which precision is fast.

Every benchmark result records it, because the fastest precision depends on the CPU (bf16 is
slower than fp32 where the CPU lacks AVX-512 BF16 / AMX, INT8 fastest with VNNI), and a number
measured on one CPU says little about another. ``CpuInfo.key`` names the CPU kind for caches
keyed on it. Linux reads ``/proc/cpuinfo``; elsewhere ``platform.processor()`` names it, with no flags.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

# The instruction sets inference speed turns on, in the order they are printed.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    model: str  # "Intel(R) Xeon(R) Platinum 8488C", or platform.processor() where /proc/cpuinfo is absent
    cores: int  # logical CPUs this process may run on (its affinity), not the machine's total
    flags: tuple[str, ...]  # the SPEED_FLAGS the CPU reports
    family: str = ""  # x86 "cpu family" and "model" numbers: tell CPU generations apart when the name does not
    model_id: str = ""

    def describe(self) -> str:
        """One line for a table title: ``AMD EPYC (family 25 model 17), 2 cores, avx512_bf16 avx512_vnni``."""
        ids = f" (family {self.family} model {self.model_id})" if self.family else ""
        return f"{self.model}{ids}, {self.cores} cores, {' '.join(self.flags) or 'no AVX2/AVX-512/AMX'}"

    @property
    def key(self) -> str:
        """The CPU kind (model, generation, flags; not the core count), e.g. for a cache of per-CPU timings."""
        return "|".join((self.model, self.family, self.model_id, ",".join(self.flags)))

    def as_dict(self) -> dict:
        return asdict(self) | {"flags": list(self.flags)}


def parse_cpuinfo(text: str, fallback_model: str = "", cores: int = 1) -> CpuInfo:
    """A ``/proc/cpuinfo`` text -> CpuInfo (its first processor block: the CPUs of one VM are alike)."""
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip(), value.strip())
    reported = set((fields.get("flags") or fields.get("Features") or "").split())  # x86 says flags, Arm says Features
    model = fields.get("model name") or fields.get("Model") or fallback_model or "unknown CPU"
    return CpuInfo(model=model, cores=cores, flags=tuple(f for f in SPEED_FLAGS if f in reported),
                   family=fields.get("cpu family", ""), model_id=fields.get("model", "") if "cpu family" in fields else "")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    fallback = platform.processor() or platform.machine()
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return CpuInfo(model=fallback or "unknown CPU", cores=usable_cores(), flags=())
    return parse_cpuinfo(text, fallback, usable_cores())
