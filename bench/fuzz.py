#!/usr/bin/env python3
"""The CI fuzz test, for as long as you like: the same corpus (tests/fuzz_corpus.py), seed after seed.

    .venv/bin/python bench/fuzz.py --minutes 60                 # in-process app, fake engine (like CI)
    .venv/bin/python bench/fuzz.py --minutes 60 --url http://127.0.0.1:8000   # a running `wanwu serve`
    .venv/bin/python bench/fuzz.py --minutes 600 --first-seed 1 --last-seed 250    # 500,000 cases (one shard)

Every answer must be 200/413/415/422 in the JSON error shape, within --max-case-s (and, in-process,
within --max-case-mb of peak RSS over the RSS the case started from). Seed 0 is the
CI run; this starts at --first-seed (1) so it covers new cases. Prints one line per seed and a
JSON summary at the end; exits 1 if any case failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.fuzz_corpus

from tests.fuzz_corpus import Summary, generate, run  # noqa: E402


@contextmanager
def _client(url: str | None):  # type: ignore[no-untyped-def]
    if url:
        import httpx

        with httpx.Client(base_url=url, timeout=60) as client:
            yield client
        return
    from tests.service.conftest import running_client

    with tempfile.TemporaryDirectory() as home, running_client(Path(home)) as client:
        yield client


def _merge(total: Summary, part: Summary) -> None:
    total.cases += part.cases
    for status, n in part.statuses.items():
        total.statuses[status] = total.statuses.get(status, 0) + n
    total.failures += part.failures
    if part.slowest_s > total.slowest_s:
        total.slowest_s, total.slowest = part.slowest_s, part.slowest
    if part.largest_mb > total.largest_mb:
        total.largest_mb, total.largest = part.largest_mb, part.largest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--url", help="fuzz a running server instead of the app in-process (fake engine)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--last-seed", type=int, help="stop after this seed (shards: run 1-250 and 251-500 side by side)")
    parser.add_argument("--cases-per-seed", type=int, default=2000)
    parser.add_argument("--max-case-s", type=float, default=10.0)
    parser.add_argument("--max-case-mb", type=float, default=768.0,
                        help="in-process only: a case that raises the peak RSS more than this over the RSS before it fails")
    args = parser.parse_args()
    total, deadline, seed = Summary(), time.monotonic() + args.minutes * 60, args.first_seed
    started = time.monotonic()
    with _client(args.url) as client:
        while time.monotonic() < deadline and (args.last_seed is None or seed <= args.last_seed):
            part = run(client, generate(seed, args.cases_per_seed), max_case_s=args.max_case_s,
                       max_case_mb=None if args.url else args.max_case_mb)
            _merge(total, part)
            rate = total.cases / (time.monotonic() - started)
            print(f"seed {seed}: {part.cases} cases, {len(part.failures)} failed; total {total.cases:,} ({rate:.0f}/s), "
                  f"slowest {total.slowest_s:.2f} s, largest case +{total.largest_mb:.0f} MB", flush=True)
            for failure in part.failures[:5]:
                print(f"  FAIL {failure}", flush=True)
            seed += 1
    report = {**total.as_dict(), "seeds": [args.first_seed, seed - 1], "minutes": round((time.monotonic() - started) / 60, 1)}
    print(json.dumps(report, indent=2))
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
