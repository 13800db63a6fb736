"""One table for every part that was measured: what, wanwu's number, the reference it is compared with, the ratio.

HTTP rows are compared with the tuned seed (the speed-up column) and, for wanwu, also with the seed
as written and the LitServe + ONNX Runtime peer (``peer``, 1 worker × 2 threads) where those ran.
"""

from __future__ import annotations

from rich.table import Table


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}×" if value and base else "—"


def engine_rows(result: dict) -> list[tuple[str, ...]]:
    rows = []
    torch_ms = {(r["model"], r["batch"]): r["ms_per_image"] for r in result["rows"] if r["engine"] == "torch"}
    fp32_ms = {(r["model"], r["engine"], r["batch"]): r["ms_per_image"] for r in result["rows"] if r["precision"] == "fp32"}
    for r in result["rows"]:
        base = torch_ms.get((r["model"], r["batch"]))
        peak = "bf16" if r["precision"].startswith("bf16") else "fp32"
        notes = [f"{r['fraction_of_peak']:.0%} of {peak} matmul peak"]
        if r["precision"] != "fp32" and (own := fp32_ms.get((r["model"], r["engine"], r["batch"]))):
            notes.insert(0, f"{own / r['ms_per_image']:.2f}× its fp32")
        if "rechecked_fraction" in r:
            notes.append(f"{r['rechecked_fraction']:.0%} re-run in fp32")
        rows.append((f"{r['model']} {r['engine']} {r['precision']} b{r['batch']}",
                     f"{r['ms_per_image']:.2f} ms ({r['images_per_s']:.0f}/s)",
                     f"torch fp32 {base:.2f} ms" if base else "—",
                     _ratio(base, r["ms_per_image"]),
                     "; ".join(notes)))
    return rows


def preprocess_rows(result: dict) -> list[tuple[str, ...]]:
    rows = [(f"{name}, fast decode", f"{s['fast_ms']:.2f} ms/img", f"exact {s['exact_ms']:.2f} ms", f"{s['speedup']:.2f}×", "")
            for name, s in result["sets"].items()]
    agreement = result["agreement"]
    rows.append((f"top-1 agreement fast vs exact ({result['model']})", f"{agreement['top1_agreement_exact_vs_fast']:.1%}",
                 f"{agreement['images']} images", "", ""))
    return rows


def http_rows(result: dict) -> list[tuple[str, ...]]:
    medians, ceilings = result["medians"], result["ceilings"]
    rows = []
    for key, row in medians.items():
        config, concurrency, images = key.split("|")
        tuned = medians.get(f"seed tuned|{concurrency}|{images}", {}).get("rps")
        written = medians.get(f"seed as written|{concurrency}|{images}", {}).get("rps")
        peer = medians.get(f"peer|{concurrency}|{images}", {}).get("rps")
        ceiling = ceilings.get(f"{config}|{images}", {}).get("rps")
        notes = [f"p50 {row['p50_ms']:.0f} p99 {row['p99_ms']:.0f} ms", f"{row['errors']:.0f} err",
                 f"RSS {row.get('rss_peak_mb', 0):.0f} MB"]
        if written and not config.startswith("seed"):
            notes.append(f"{_ratio(row['rps'], written)} as written")
        if peer and config.startswith("wanwu"):
            notes.append(f"{_ratio(row['rps'], peer)} the peer")
        if ceiling:
            notes.append(f"{row['rps'] / ceiling:.0%} of ceiling")
        rows.append((f"{config}, c={concurrency}, {images}", f"{row['rps']:.1f} req/s",
                     f"seed tuned {tuned:.1f}" if tuned and config != "seed tuned" else "—",
                     _ratio(row["rps"], tuned) if config != "seed tuned" else "", ", ".join(notes)))
    return rows


def cold_start_rows(result: dict) -> list[tuple[str, ...]]:
    by_config: dict[str, float] = {}
    for key, row in result["medians"].items():
        by_config.setdefault(key.split("|")[0], row["cold_start_s"])
    tuned = by_config.get("seed tuned")
    rows = []
    for config, seconds in by_config.items():
        first = result["first_start_s"].get(config)
        reference = f"seed tuned {tuned:.2f} s" if tuned and config != "seed tuned" else "—"
        rows.append((f"{config}: start → ready", f"{seconds:.2f} s", reference,
                     _ratio(tuned, seconds) if config != "seed tuned" else "",
                     f"unmeasured first start {first:.2f} s (exports, compiles or installs)" if first else ""))
    return rows


def build_table(parts: dict, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("part", "measurement", "wanwu", "reference", "speed-up", "notes"):
        table.add_column(column)
    makers = {"engines": engine_rows, "preprocess": preprocess_rows, "http": http_rows, "cold start": None}
    for part, make in makers.items():
        source = parts.get("http") if part == "cold start" else parts.get(part)
        if not source:
            continue
        rows = cold_start_rows(source) if make is None else make(source)
        for i, row in enumerate(rows):
            table.add_row(part if i == 0 else "", *row)
        table.add_section()
    return table
