"""``wanwu tag --ray``: a real two-node Ray cluster (head + one worker) writes the same records as the local run.

The cluster runs in a private network namespace (``unshare -n``, then loopback up): ``ray start`` advertises
the machine's external interface even when told 127.0.0.1, and there loopback is all it can see. Each node
has 2 logical CPUs (4 in all): an actor pool that takes every CPU starves Ray Data's read stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import missing, require_module
from tests.unit.test_tagging import photo, read_jsonl

pytestmark = pytest.mark.slow

CLUSTER_UP = """
set -e
ip link set lo up
export RAY_AUTH_MODE=disabled  # nothing outside this namespace can reach it
export RAY_TMPDIR="$(mktemp -d /tmp/wanwu-ray.XXXXXX)"  # short: Ray's socket paths must fit in 107 bytes
RAY="$(dirname "$PYTHON")/ray"
trap '"$RAY" stop --force > /dev/null 2>&1; rm -rf "$RAY_TMPDIR"' EXIT
"$RAY" start --head --node-ip-address 127.0.0.1 --port 6390 --num-cpus 2 --include-dashboard false \
    --disable-usage-stats > "$WORK/head.log" 2>&1
"$RAY" start --address 127.0.0.1:6390 --node-ip-address 127.0.0.1 --num-cpus 2 --disable-usage-stats > "$WORK/worker.log" 2>&1
"""  # a head and one worker, 2 logical CPUs each; the test's script goes on from here

CLUSTER = CLUSTER_UP + """
"$PYTHON" -c "import ray; ray.init(address='127.0.0.1:6390', log_to_driver=False); \
print('alive nodes', sum(n['Alive'] for n in ray.nodes()))"
"$PYTHON" -m wanwu.cli --home "$HOME_" tag "$LIB" --out "$WORK/ray.jsonl" --ray 127.0.0.1:6390 --batch-size 4 --json
"""


def _namespace() -> list[str]:
    """A private network and PID namespace: ``ray stop --force`` and ``pgrep`` see only this cluster's processes
    (outside one, ``ray stop`` kills every Ray process on the machine), and they all end with the script."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        missing("needs unshare and ip (util-linux, iproute2) for a private network namespace")
    private = ["--net", "--pid", "--fork", "--mount-proc"]
    return ["unshare", *private] if os.geteuid() == 0 else ["unshare", "--map-root-user", *private]


def _same(local: dict, ray: dict) -> bool:
    """Equal, scores to the 6 digits a record keeps (± 1 in the last, for batches of other sizes)."""
    strip = lambda r: {**r, "predictions": [{**p, "score": None} for p in r["predictions"] or []]}  # noqa: E731
    scores = lambda r: [p["score"] for p in r["predictions"] or []]  # noqa: E731
    return strip(local) == strip(ray) and all(abs(a - b) <= 1.5e-6 for a, b in zip(scores(local), scores(ray), strict=True))


def test_a_two_node_ray_cluster_writes_the_local_records(photos_dir: Path, shared_home: Path, tmp_path: Path) -> None:
    require_module("ray.data")
    lib = tmp_path / "lib"
    lib.mkdir()
    for path in sorted(photos_dir.glob("*.jpg")):
        shutil.copy(path, lib / path.name)
    for i in range(12):
        photo(lib / "made" / f"m{i:02d}.png", i, size=(300, 200), fmt="PNG")
    shutil.copy(lib / "dog.jpg", lib / "made" / "dog-again.jpg")  # identical files: decoded once on the cluster too
    (lib / "made" / "notes.jpg").write_text("not an image")
    local = subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(shared_home), "tag", str(lib), "--out",
                            str(tmp_path / "local.jsonl"), "--batch-size", "8"], capture_output=True, text=True, timeout=600)
    assert local.returncode == 1, local.stderr  # notes.jpg
    env = {**os.environ, "WORK": str(tmp_path), "PYTHON": sys.executable, "HOME_": str(shared_home), "LIB": str(lib)}
    proc = subprocess.run([*_namespace(), "bash", "-c", CLUSTER], env=env, capture_output=True, text=True, timeout=900)
    logs = proc.stderr[-4000:] + "".join(p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
    assert "alive nodes 2" in proc.stdout, logs
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["images"], summary["failed"], summary["reused"]) == (21, 1, 1), logs
    assert summary["settings"]["ray"]["cluster_cpus"] == 4.0
    by_path = lambda rows: {r["path"]: r for r in rows}  # noqa: E731
    ray_records, local_records = by_path(read_jsonl(tmp_path / "ray.jsonl")), by_path(read_jsonl(tmp_path / "local.jsonl"))
    assert sorted(ray_records) == sorted(local_records) and len(ray_records) == 21
    different = [p for p in local_records if not _same(local_records[p], ray_records[p])]
    assert different == [], f"{different[0]}: local {local_records[different[0]]} vs ray {ray_records[different[0]]}"


def test_tagger_is_a_map_batches_ready_callable(photos_dir: Path, shared_home: Path, tmp_path: Path) -> None:
    """Called as Ray Data would call it on ``read_binary_files(include_paths=True)`` batches (no cluster needed,
    and none started: asking Ray for the runtime context outside one starts a local cluster)."""
    import numpy as np
    import ray

    from wanwu.tagging.api import TagOptions, tag
    from wanwu.tagging.on_ray import Tagger

    files = sorted(photos_dir.glob("*.jpg"))[:3]
    tagger = Tagger(model="efficientnet_lite0", home=str(shared_home), top_k=3)
    batch = {"bytes": np.array([f.read_bytes() for f in files] + [b"not an image"], dtype=object),
             "path": np.array([str(f) for f in files] + ["/x/notes.jpg"], dtype=object)}
    out = tagger(batch)
    assert not ray.is_initialized()
    assert set(out) == {"path", "record", "label", "score", "known", "phash", "vector", "has_vector"} and len(out["record"]) == 4
    records = [json.loads(r) for r in out["record"]]
    assert records[3]["error"]["code"] == "unsupported_media_type" and out["label"][3] == ""
    tag(files, tmp_path / "local.jsonl", model="efficientnet_lite0", home=shared_home,
        options=TagOptions(top_k=3, decode_workers=1))
    local = {r["sha256"]: r["predictions"] for r in read_jsonl(tmp_path / "local.jsonl")}
    assert [local[r["sha256"]] for r in records[:3]] == [r["predictions"] for r in records[:3]]
    assert list(out["label"][:3]) == [r["predictions"][0]["label"] for r in records[:3]]


KILL = CLUSTER_UP + """
"$PYTHON" -m wanwu.cli --home "$HOME_" tag "$LIB" --out "$WORK/ray.jsonl" --ray 127.0.0.1:6390 --batch-size 4 --json \
    > "$WORK/summary.json" 2> "$WORK/tag.err" &
JOB=$!
# the first records are in and actors are busy: kill one actor (SIGKILL: no clean-up, as an OOM kill or a lost node)
for _ in $(seq 600); do
    lines=$(cat "$WORK/ray.jsonl" 2> /dev/null | wc -l)
    victim=$(pgrep -f '^[r]ay::MapWorker.*Tagger' | head -n 1 || true)
    [ "$lines" -ge 1 ] && [ -n "$victim" ] && break
    kill -0 $JOB 2> /dev/null || break
    sleep 0.1
done
echo "killed $victim with $lines records written"
kill -9 "$victim"
set +e
wait $JOB
echo "exit $?"
"""


def test_a_ray_job_survives_a_killed_worker_with_one_record_per_image(samples_dir: Path, shared_home: Path,
                                                                        tmp_path: Path) -> None:
    """SIGKILL one Ray Data actor mid-job: Ray restarts it and retries its batch; the job completes and every image
    has exactly one record (a batch delivered twice by a retry is written once)."""
    require_module("ray.data")
    lib = tmp_path / "lib"
    lib.mkdir()
    for path in sorted(samples_dir.glob("*.JPEG")):
        shutil.copy(path, lib / path.name)
    for i in range(60):
        photo(lib / "made" / f"m{i:02d}.png", i, size=(320, 240), fmt="PNG")
    env = {**os.environ, "WORK": str(tmp_path), "PYTHON": sys.executable, "HOME_": str(shared_home), "LIB": str(lib)}
    proc = subprocess.run([*_namespace(), "bash", "-c", KILL], env=env, capture_output=True, text=True, timeout=900)
    logs = proc.stdout + proc.stderr[-3000:] + "".join(p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
    logs += (tmp_path / "tag.err").read_text()[-3000:] if (tmp_path / "tag.err").exists() else ""
    killed = re.search(r"killed (\d+) with (\d+) records written", proc.stdout)
    assert killed and "exit 0" in proc.stdout, logs
    expected = 100 + 60
    assert 1 <= int(killed.group(2)) < expected, f"the worker was not killed mid-job: {logs}"
    summary = json.loads((tmp_path / "summary.json").read_text())  # only the summary: Ray's news went to stderr
    assert (summary["images"], summary["failed"]) == (expected, 0), logs
    lines = read_jsonl(tmp_path / "ray.jsonl")
    paths = [r["path"] for r in lines]
    assert len(paths) == len(set(paths)) == expected, [p for p in paths if paths.count(p) > 1][:5]
    assert all(r["error"] is None and r["predictions"] for r in lines)
