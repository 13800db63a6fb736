"""``--precision auto``: the fastest precision this CPU runs the model at, among those known to agree with fp32.

Which precision is fastest depends on the CPU (bf16 is 1.8× *slower* than fp32 on a Xeon with
AVX-512 BF16 but no AMX, and 2× faster on AMD Zen 4), so it is measured, not assumed: at first use
each ready precision is timed at the serving batch size on this CPU. A precision is ready when it has
a stored agreement with fp32 that meets ``TARGET_AGREEMENT`` (an INT8 artifact's report, a bf16
guard's report); bf16 must also be ``BF16_MIN_SPEEDUP`` faster than fp32 to be worth its guard. The
choice is kept in the bundle (``precision-auto.json``), keyed by the CPU kind, the engine and its
version, threads and batch size (the bundle itself is keyed by the weights), so later starts do not
re-time. fp32 is always a candidate, so auto is never slower than fp32 as measured.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wanwu.benchmark import pixel_inputs, time_engine
from wanwu.cpu import cpu_info
from wanwu.engines import Engine, get_engine_info
from wanwu.sources import ModelSource
from wanwu.store import write_file

AUTO = "auto"
TARGET_AGREEMENT = 0.98
BF16_MIN_SPEEDUP = 1.10
CHOICES_FILE = "precision-auto.json"

Measure = Callable[[str], float]  # precision -> ms per image at the serving batch size


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    reason: str
    ms_per_image: dict[str, float]
    agreement: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)
    cached: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def ready_precisions(engine: str, source: ModelSource) -> tuple[dict[str, float], dict[str, str]]:
    """{precision: stored top-1 agreement with fp32} of those ready to run, and {precision: why not} for the rest."""
    from wanwu.precision.bf16 import latest_guard
    from wanwu.precision.int8 import int8_artifacts

    ready, skipped = {"fp32": 1.0}, {}
    offered = get_engine_info(engine).precisions
    guard = latest_guard(source.bundle)
    int8 = int8_artifacts(source.bundle, engine) if "int8" in offered else []
    stored = {
        "bf16": (guard.report or {}).get("top1_agreement") if guard else None,
        "int8": (int8[-1].report or {}).get("top1_agreement") if int8 else None,
    }
    how = {"bf16": "wanwu quantize {} --precision bf16 --calib DIR", "int8": "wanwu quantize {} --calib DIR"}
    for precision, agreement in stored.items():
        if precision not in offered:
            skipped[precision] = f"{engine} does not run it"
        elif precision == "bf16" and not _cpu_has_bf16(engine):
            skipped[precision] = "this CPU has no bf16"
        elif agreement is None:
            skipped[precision] = f"no stored agreement with fp32 yet ({how[precision].format(source.spec.name)})"
        elif agreement < TARGET_AGREEMENT:
            skipped[precision] = f"top-1 agreement with fp32 {agreement:.1%} is below {TARGET_AGREEMENT:.0%}"
        else:
            ready[precision] = float(agreement)
    return ready, skipped


def pick(ms_per_image: dict[str, float]) -> tuple[str, str]:
    """The fastest of the timed precisions (bf16 only at ≥ ``BF16_MIN_SPEEDUP`` × fp32), and why."""
    fp32 = ms_per_image["fp32"]
    eligible = {p: ms for p, ms in ms_per_image.items() if p != "bf16" or fp32 / ms >= BF16_MIN_SPEEDUP}
    best = min(eligible, key=lambda p: (eligible[p], p != "fp32"))
    if best == "fp32":
        others = ", ".join(f"{p} {fp32 / ms:.2f}×" for p, ms in ms_per_image.items() if p != "fp32")
        return best, f"fp32 is fastest or the others gain too little ({others})" if others else "the only ready precision"
    return best, f"{best} runs {fp32 / eligible[best]:.2f}× fp32's speed on this CPU"


def choose_precision(engine: str, source: ModelSource, threads: int, batch: int, measure: Measure) -> PrecisionChoice:
    """The precision ``--precision auto`` runs: from the bundle's cache for this CPU kind, else timed now."""
    ready, skipped = ready_precisions(engine, source)
    key = _cache_key(engine, threads, batch, ready)
    cached = _read_choices(source.bundle).get(key)
    if cached is not None:
        return PrecisionChoice(**{**cached, "cached": True})
    if len(ready) == 1:
        ms: dict[str, float] = {}
        precision, reason = "fp32", "the only ready precision"
    else:
        ms = {p: measure(p) for p in ready}
        precision, reason = pick(ms)
    choice = PrecisionChoice(precision, reason, ms, ready, skipped)
    if ms:  # a timing is worth keeping; a lone fp32 is decided again for free
        _write_choice(source.bundle, key, choice)
    return choice


def _cpu_has_bf16(engine: str) -> bool:
    if engine != "openvino":
        return False
    from wanwu.engines.openvino_engine import cpu_has_bf16

    return cpu_has_bf16()


def engine_timer(open_unguarded: Callable[[str], Engine], source: ModelSource, batch: int) -> Measure:
    """Times an engine opened at each precision (unguarded bf16: random pixels are nearly all near-ties,
    which would time the guard's fp32 re-runs) on random crops in batches of ``batch``."""
    images = pixel_inputs(source.spec.preprocessing, count=batch)

    def measure(precision: str) -> float:
        runner = open_unguarded(precision)
        return float(time_engine(runner.run, images, warmup=2, runs=7, batch=batch)["ms_per_image"])

    return measure


def _cache_key(engine: str, threads: int, batch: int, ready: dict[str, float]) -> str:
    version = importlib.metadata.version(get_engine_info(engine).requires)
    return "|".join((cpu_info().key, f"{engine} {version}", f"threads={threads}", f"batch={batch}", ",".join(sorted(ready))))


def cached_choices(bundle: Path) -> list[dict]:
    """Every choice kept in a bundle, with the CPU and settings it was made for (for ``wanwu models``)."""
    return [{"key": key, **entry} for key, entry in _read_choices(bundle).items()]


def _read_choices(bundle: Path) -> dict[str, dict]:
    try:
        data = json.loads((bundle / CHOICES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_choice(bundle: Path, key: str, choice: PrecisionChoice) -> None:
    """Best effort and atomic: a read-only store (a container's baked bundle) times again at the next start."""
    entry = {k: v for k, v in choice.as_dict().items() if k != "cached"}
    try:
        write_file(bundle / CHOICES_FILE, json.dumps({**_read_choices(bundle), key: entry}, indent=2))
    except OSError:
        pass
