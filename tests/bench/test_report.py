"""bench/all.py: the one table's ratios and notes come from the measured numbers, and bad setups fail clearly.

These test the benchmark suite itself, so they import it from bench/ (the other tests never do).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.suite.report import build_table, cold_start_rows, engine_rows, http_rows, preprocess_rows
from rich.console import Console

REPO = Path(__file__).resolve().parents[2]


def _row(rps: float, p50: float, p99: float, cold: float) -> dict:
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": 0, "rss_peak_mb": 300, "cold_start_s": cold}


HTTP = {
    "medians": {
        "seed as written|16|imagenet-samples": _row(8.0, 1800, 2700, 2.5),
        "seed tuned|16|imagenet-samples": _row(30.0, 530, 700, 2.0),
        "wanwu|16|imagenet-samples": _row(45.0, 350, 450, 1.2),
    },
    "ceilings": {"wanwu|imagenet-samples": {"decode_core_ms": 5.0, "engine_core_ms": 35.0, "rps": 50.0}},
    "first_start_s": {"wanwu": 4.0},
}


def test_http_rows_compare_with_the_tuned_seed_of_the_same_workload() -> None:
    rows = {row[0]: row for row in http_rows(HTTP)}
    wanwu = rows["wanwu, c=16, imagenet-samples"]
    assert wanwu[1:4] == ("45.0 req/s", "seed tuned 30.0", "1.50×")
    assert "5.62× as written" in wanwu[4] and "90% of ceiling" in wanwu[4] and "p99 450" in wanwu[4]
    assert rows["seed tuned, c=16, imagenet-samples"][3] == ""  # no ratio of the reference with itself


def test_cold_start_rows_report_second_and_first_start() -> None:
    rows = {row[0]: row for row in cold_start_rows(HTTP)}
    assert rows["wanwu: start → ready"][1:4] == ("1.20 s", "seed tuned 2.00 s", "1.67×")
    assert "unmeasured first start 4.00 s" in rows["wanwu: start → ready"][4]


def test_engine_rows_give_speedup_over_torch_at_the_same_batch() -> None:
    base = {"model": "m", "threads": 2, "images_per_s": 1.0, "fraction_of_peak": 0.25}
    result = {"rows": [
        base | {"engine": "torch", "precision": "fp32", "batch": 8, "ms_per_image": 30.0},
        base | {"engine": "openvino", "precision": "bf16", "batch": 8, "ms_per_image": 10.0},
        base | {"engine": "openvino", "precision": "int8", "batch": 1, "ms_per_image": 5.0},
    ]}
    rows = {row[0]: row for row in engine_rows(result)}
    assert rows["m openvino bf16 b8"][3] == "3.00×" and "bf16 matmul peak" in rows["m openvino bf16 b8"][4]
    assert rows["m openvino int8 b1"][2:4] == ("—", "—")  # no torch row at batch 1: no made-up ratio


def test_engine_rows_give_reduced_precision_against_its_own_fp32() -> None:
    base = {"model": "m", "threads": 2, "images_per_s": 1.0, "fraction_of_peak": 0.5, "batch": 8, "engine": "openvino"}
    result = {"rows": [
        base | {"precision": "fp32", "ms_per_image": 6.0},
        base | {"precision": "bf16", "ms_per_image": 3.0},
        base | {"precision": "bf16+guard", "ms_per_image": 4.0, "rechecked_fraction": 0.06},
    ]}
    rows = {row[0]: row[4] for row in engine_rows(result)}
    assert rows["m openvino bf16 b8"].startswith("2.00× its fp32")
    assert rows["m openvino bf16+guard b8"] == "1.50× its fp32; 50% of bf16 matmul peak; 6% re-run in fp32"
    assert "its fp32" not in rows["m openvino fp32 b8"]


def test_preprocess_rows_and_whole_table_render() -> None:
    pre = {"model": "m", "sets": {"12 MP": {"images": 6, "exact_ms": 150.0, "fast_ms": 20.0, "speedup": 7.5}},
           "agreement": {"images": 100, "top1_agreement_exact_vs_fast": 1.0}}
    assert preprocess_rows(pre)[0][1:4] == ("20.00 ms/img", "exact 150.00 ms", "7.50×")
    console = Console(width=200, record=True)
    console.print(build_table({"preprocess": pre, "http": HTTP}, "t"))
    text = console.export_text()
    assert "cold start" in text and "100.0%" in text and "engines" not in text  # parts not measured are left out


def test_http_rows_compare_wanwu_with_the_peer_too() -> None:
    medians = HTTP["medians"] | {"peer|16|imagenet-samples": _row(36.0, 400, 480, 3.0)}
    rows = {row[0]: row for row in http_rows(HTTP | {"medians": medians})}
    assert "1.25× the peer" in rows["wanwu, c=16, imagenet-samples"][4]
    assert rows["peer, c=16, imagenet-samples"][1:4] == ("36.0 req/s", "seed tuned 30.0", "1.20×")
    assert "the peer" not in rows["peer, c=16, imagenet-samples"][4]


def test_bench_all_without_the_shared_data_fails_with_a_clear_message(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "all.py"), "--shared", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "nowhere/data/imagenet-samples not found; pass --shared DIR" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_all_rejects_an_unknown_configuration(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.all", "--configs", "wanwu", "nginx"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "invalid choice: 'nginx'" in proc.stderr
