"""Which CPU a result was measured on: model, usable cores and the flags that decide which precision is fast."""

from __future__ import annotations

from pathlib import Path

from wanwu.cpu import cpu_info, parse_cpuinfo

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni

processor\t: 1
model name\t: a second block, ignored
"""

EPYC_NO_BF16 = """processor\t: 0
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma
"""

ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm bf16 i8mm
CPU implementer\t: 0x41
"""


def test_intel_with_amx_reports_model_generation_and_flags_in_order() -> None:
    cpu = parse_cpuinfo(XEON, cores=2)
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz"
    assert (cpu.family, cpu.model_id, cpu.cores) == ("6", "207", 2)
    assert cpu.flags == ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
    assert cpu.describe() == (
        "Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz (family 6 model 207), 2 cores, "
        "avx2 avx512f avx512_vnni avx_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"
    )


def test_a_cpu_without_bf16_or_vnni_lists_only_what_it_has() -> None:
    cpu = parse_cpuinfo(EPYC_NO_BF16, cores=4)
    assert cpu.flags == ("avx2",)
    assert "avx512_bf16" not in cpu.describe() and "4 cores" in cpu.describe()


def test_without_a_model_name_the_fallback_names_it() -> None:
    cpu = parse_cpuinfo(ARM, fallback_model="aarch64", cores=8)
    assert (cpu.model, cpu.family, cpu.flags) == ("aarch64", "", ())
    assert cpu.describe() == "aarch64, 8 cores, no AVX2/AVX-512/AMX"


def test_the_key_names_the_cpu_kind_not_the_core_count() -> None:
    assert parse_cpuinfo(XEON, cores=2).key == parse_cpuinfo(XEON, cores=16).key
    assert parse_cpuinfo(XEON).key != parse_cpuinfo(EPYC_NO_BF16).key
    assert parse_cpuinfo(XEON).as_dict()["flags"][-1] == "amx_int8"


def test_no_proc_cpuinfo_falls_back_to_the_platform(tmp_path: Path) -> None:
    cpu = cpu_info(tmp_path / "no-such-cpuinfo")
    assert cpu.model and cpu.cores >= 1 and cpu.flags == ()


def test_this_machine_is_described() -> None:
    cpu = cpu_info()
    assert cpu.model and cpu.cores >= 1 and f"{cpu.cores} cores" in cpu.describe()


def _cgroup(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2_quota_limits_the_usable_cores(tmp_path: Path) -> None:
    import os

    from wanwu.cpu import cpu_quota, usable_cores

    visible = len(os.sched_getaffinity(0))
    assert cpu_quota(_cgroup(tmp_path / "none", {"cpu.max": "max 100000\n"})) is None
    assert usable_cores(tmp_path / "none") == visible
    assert cpu_quota(_cgroup(tmp_path / "half", {"cpu.max": "50000 100000\n"})) == 0.5
    assert usable_cores(tmp_path / "half") == 1  # half a core still gets one thread
    assert cpu_quota(_cgroup(tmp_path / "one-and-a-half", {"cpu.max": "150000 100000\n"})) == 1.5
    assert usable_cores(tmp_path / "one-and-a-half") == min(visible, 2)
    assert usable_cores(_cgroup(tmp_path / "huge", {"cpu.max": "6400000 100000\n"})) == visible  # affinity is less
    assert usable_cores(tmp_path / "missing") == visible


def test_cgroup_v1_quota_limits_the_usable_cores(tmp_path: Path) -> None:
    from wanwu.cpu import cpu_quota, usable_cores

    v1 = _cgroup(tmp_path / "v1", {"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cpu_quota(v1) == 1.0 and usable_cores(v1) == 1
    unlimited = _cgroup(tmp_path / "v1-none", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cpu_quota(unlimited) is None
    garbled = _cgroup(tmp_path / "v1-bad", {"cpu/cpu.cfs_quota_us": "lots\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cpu_quota(garbled) is None


def test_no_thread_default_outside_the_cpu_module_counts_the_machine() -> None:
    """os.cpu_count() counts the host's CPUs, not this process's: only wanwu.cpu may fall back on it."""
    src = Path(__file__).resolve().parents[2] / "src" / "wanwu"
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py") if "os.cpu_count()" in p.read_text() and p.name != "cpu.py"]
    assert offenders == []
