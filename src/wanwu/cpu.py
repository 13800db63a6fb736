"""Which CPU this is: the model, the cores this process may use, and the flags that decide which precision is fast.

Every benchmark result records it, because the fastest precision depends on the CPU (bf16 is
slower than fp32 where the CPU lacks AVX-512 BF16 / AMX, INT8 fastest with VNNI), and a number
measured on one CPU says little about another. ``CpuInfo.key`` names the CPU kind for caches
keyed on it. Linux reads ``/proc/cpuinfo``; elsewhere ``platform.processor()`` names it, with no flags.
"""

from __future__ import annotations

import functools
import math
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


def usable_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may keep busy: its CPU affinity, further limited by its container's CPU quota.

    The default thread count everywhere (``--threads`` / ``WANWU_THREADS`` override it). A quota does not change how
    many cores the OS reports, and an engine with more threads than its quota stalls whole periods at a time: in a
    container limited to 2 CPUs on a 64-core host, 64 threads run slower than 2.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def cpu_quota(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup may use per period (``1.5``), or None where there is no limit.

    cgroup v2: ``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``. cgroup v1: ``cpu/cpu.cfs_quota_us``
    (``-1``: none) over ``cpu/cpu.cfs_period_us`` (also mounted as ``cpu,cpuacct``).
    """
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else _ratio(quota, period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        try:
            quota = (cgroup_root / folder / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup_root / folder / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            continue
        try:
            return _ratio(quota, period)
        except ValueError:
            return None
    return None


def _ratio(quota: str, period: str) -> float | None:
    q, p = int(quota), int(period)
    return q / p if q > 0 and p > 0 else None


@functools.cache
def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    fallback = platform.processor() or platform.machine()
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return CpuInfo(model=fallback or "unknown CPU", cores=usable_cores(), flags=())
    return parse_cpuinfo(text, fallback, usable_cores())
