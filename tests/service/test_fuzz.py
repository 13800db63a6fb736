"""The fuzz corpus against the app in-process: every answer is 200/413/415/422 in the JSON shape, promptly, in bounded memory."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz_corpus import generate, peak_rss_mb, run
from tests.service.conftest import running_client

CASES = 2_000
PEAK_RSS_GROWTH_MB = 768  # the run, and each case: the largest accepted image (64 Mpx) decodes to ~190 MB
MAX_CASE_S = 10.0  # a hang bound, not a speed test: the slowest case takes ~1 s (a 64,000×1,000 PNG)


def test_two_thousand_hostile_requests_get_clean_answers(tmp_path: Path) -> None:
    with running_client(tmp_path) as client:
        start = peak_rss_mb(reset=True)
        summary = run(client, generate(seed=0, count=CASES), max_case_s=MAX_CASE_S, max_case_mb=PEAK_RSS_GROWTH_MB)
        peak = peak_rss_mb()
    assert summary.cases == CASES
    assert summary.failures == [], summary.as_dict()
    assert {200, 413, 415, 422} <= set(summary.statuses)  # the corpus reaches every kind of answer
    if start is not None and peak is not None:
        assert peak - start < PEAK_RSS_GROWTH_MB, f"peak RSS grew {peak - start:.0f} MB (slowest: {summary.slowest})"
