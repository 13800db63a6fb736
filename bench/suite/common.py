"""What the benchmark scripts share: where the shared data is, and what every result carries.

Every result records the machine it ran on (CPU model, cores, the flags that matter: a number
from one CPU does not carry over to another) in its table title and its JSON.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from wanwu.cpu import cpu_info

REPO = Path(__file__).resolve().parents[2]
# data/imagenet-samples, data/photos, and bench/ (the seed service, the peer, the load generator)
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))


def machine() -> dict:
    return {"cpu": cpu_info().as_dict(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def title(what: str) -> str:
    """A table title: what was measured, and on which CPU (results from another CPU do not carry over)."""
    return f"{what}\nCPU: {cpu_info().describe()}"


def write_json(path: Path, result: dict) -> None:
    result = {"machine": machine(), **result, "load_average_after": os.getloadavg()}
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def log(line: str) -> None:
    """Progress goes to stderr, so that stdout holds only the table (or the JSON)."""
    print(line, file=sys.stderr, flush=True)
