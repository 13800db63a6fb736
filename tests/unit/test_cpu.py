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
