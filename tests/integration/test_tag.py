"""``wanwu tag`` end to end with the bundled model: the record contract, bad inputs, formats, SIGKILL and resume."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from tests.helpers import require_module
from tests.unit.test_tagging import photo, png_bomb, read_jsonl
from wanwu.tagging.parquet import TOP_CATEGORY_FIELDS

pytestmark = pytest.mark.slow
DOGS = {"German shepherd", "malamute", "Siberian husky", "Eskimo dog"}


def wanwu(home: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "wanwu.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def library(photos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample photos (in a temporary folder, never in the repository), one in a subfolder."""
    lib = tmp_path_factory.mktemp("library")
    for path in sorted(photos_dir.glob("*.jpg")):
        shutil.copy(path, lib / path.name)
    (lib / "album").mkdir()
    shutil.move(lib / "kite.jpg", lib / "album" / "kite.jpg")
    return lib


def test_records_on_real_photos(library: Path, shared_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "tags.jsonl"
    proc = wanwu(shared_home, "tag", str(library), "--out", str(out), "--top-k", "3", "--json", "--report", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (tmp_path / "r.html").read_text().count('src="data:image/jpeg;base64,') == summary["images"]
    files = sorted(p for p in library.rglob("*.jpg"))
    assert (summary["images"], summary["tagged"], summary["failed"]) == (len(files), len(files), 0)
    records = {r["path"]: r for r in read_jsonl(out)}
    assert sorted(records) == sorted(str(p.relative_to(library)) for p in files) and "album/kite.jpg" in records
    for rel, record in records.items():
        data = (library / rel).read_bytes()
        with Image.open(library / rel) as img:
            upright = ImageOps.exif_transpose(img)
            assert (record["width"], record["height"]) == upright.size
        assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
        assert record["model"] == "efficientnet_lite0" and len(record["weights_sha256"]) == 64
        assert record["error"] is None and len(record["predictions"]) == 3
    assert records["dog.jpg"]["predictions"][0]["label"] in DOGS
    # the same answers as `wanwu predict` (one ranking path), to the 6 digits a record keeps
    predicted = json.loads(wanwu(shared_home, "predict", "--json", "--top-k", "3", str(library / "dog.jpg")).stdout)
    assert [(p["index"], round(p["score"], 6)) for p in predicted["predictions"]] == [
        (p["index"], p["score"]) for p in records["dog.jpg"]["predictions"]]


def test_csv_and_parquet_hold_the_same_records(library: Path, shared_home: Path, tmp_path: Path) -> None:
    pq = require_module("pyarrow.parquet")
    import csv

    for name in ("tags.jsonl", "tags.csv", "tags.parquet"):
        proc = wanwu(shared_home, "tag", str(library), "--out", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
    jsonl = {r["path"]: r for r in read_jsonl(tmp_path / "tags.jsonl")}
    parquet = {r["path"]: r for r in pq.read_table(tmp_path / "tags.parquet").to_pylist()}
    rows = {r["path"]: r for r in csv.DictReader((tmp_path / "tags.csv").open(encoding="utf-8", newline=""))}
    # Parquet adds the top category's own columns (category, category_zh, category_score) to the record's
    assert {p: {k: v for k, v in r.items() if k not in TOP_CATEGORY_FIELDS} for p, r in parquet.items()} == jsonl
    assert {p: json.loads(r["predictions"]) for p, r in rows.items()} == {p: r["predictions"] for p, r in jsonl.items()}
    assert {p: json.loads(r["categories"]) for p, r in rows.items()} == {p: r["categories"] for p, r in jsonl.items()}
    assert all(parquet[p]["category"] == r["category"] and parquet[p]["unknown"] == (r["unknown"] == "true")
               for p, r in rows.items())


def test_bad_inputs_are_recorded_and_the_run_goes_on(photos_dir: Path, shared_home: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    dog = (photos_dir / "dog.jpg").read_bytes()
    (lib / "dog.jpg").write_bytes(dog)
    (lib / "truncated.jpg").write_bytes(dog[: len(dog) // 3])
    (lib / "readme.jpg").write_text("not an image")
    (lib / "zero.jpg").write_bytes(b"")
    png_bomb(lib / "bomb.png")
    (lib / "locked.jpg").write_bytes(dog[:-1])  # not identical to dog.jpg, so it must really be read
    (lib / "locked.jpg").chmod(0)
    (lib / "dangling.jpg").symlink_to(lib / "deleted.jpg")
    # root reads any file: drop the capability that lets it, so `locked.jpg` is unreadable as for anyone else
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    if prefix and not shutil.which("setpriv"):
        pytest.fail("running as root needs setpriv (util-linux) to make a file unreadable")
    proc = wanwu(shared_home, "tag", str(lib), "--out", str(tmp_path / "tags.jsonl"), "--follow-symlinks", prefix=prefix)
    assert proc.returncode == 1, proc.stderr
    codes = {r["path"]: (r["error"] or {}).get("code") for r in read_jsonl(tmp_path / "tags.jsonl")}
    assert codes == {"dog.jpg": None, "truncated.jpg": "corrupt_image", "readme.jpg": "unsupported_media_type",
                     "zero.jpg": "empty_file", "bomb.png": "too_many_pixels", "locked.jpg": "permission_denied",
                     "dangling.jpg": "broken_symlink"}
    assert "tagged 1," in proc.stdout and "failed 6" in proc.stdout


def _wait_for_lines(path: Path, lines: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or path.read_bytes().count(b"\n") < lines:
        if proc.poll() is not None:
            pytest.fail(f"wanwu tag ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail("wanwu tag wrote too little to kill it mid-run")
        time.sleep(0.02)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_sigkill_mid_run_then_rerun_tags_every_image_exactly_once(shared_home: Path, tmp_path: Path) -> None:
    lib, out = tmp_path / "lib", tmp_path / "tags.jsonl"
    names = [f"{i // 50:02d}/img{i:03d}.jpg" for i in range(300)]
    for i, name in enumerate(names):
        photo(lib / name, i, size=(480, 360))
    args = [sys.executable, "-m", "wanwu.cli", "--home", str(shared_home), "tag", str(lib), "--out", str(out), "--batch-size", "8"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_lines(out, 40, proc)
        decoders = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # `kill -9 PID`: the run only; its decoder processes must notice and go
        proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while any(map(_running, decoders)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert decoders and not any(map(_running, decoders)), "orphaned decoders stayed"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    data = out.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    before = [json.loads(line) for line in complete.splitlines()]
    assert 40 <= len(before) < len(names), "the run was not killed mid-way"
    out.write_bytes(complete + b'{"path": "00/img0')  # and as if the kill had landed mid-write
    rerun = wanwu(shared_home, "tag", str(lib), "--out", str(out), "--batch-size", "8", "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(before) and summary["tagged"] == len(names) - len(before)
    assert summary["torn_bytes"] == len(b'{"path": "00/img0')
    records = read_jsonl(out)  # every line parses
    assert sorted(r["path"] for r in records) == sorted(names)
    assert all(r["error"] is None and r["predictions"] for r in records)


def test_ctrl_c_saves_what_is_done_says_so_writes_the_report_and_a_rerun_completes(shared_home: Path, tmp_path: Path) -> None:
    lib, out, report = tmp_path / "lib", tmp_path / "tags.jsonl", tmp_path / "report.html"
    names = [f"{i // 50:02d}/img{i:03d}.jpg" for i in range(300)]
    for i, name in enumerate(names):
        photo(lib / name, i, size=(480, 360))
    args = [sys.executable, "-m", "wanwu.cli", "--home", str(shared_home), "tag", str(lib), "--out", str(out),
            "--batch-size", "8", "--report", str(report)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_lines(out, 40, proc)
        decoders = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the run and its decoder processes
        _, stderr = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 130, stderr
    deadline = time.monotonic() + 10  # the pool's helper processes (its resource tracker) see the parent go
    while any(map(_running, decoders)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert decoders and not any(map(_running, decoders))
    found = re.search(r"interrupted: ([\d,]+) images saved to .*tags\.jsonl this run", stderr)
    assert found and "Run the same command again to resume where it stopped." in stderr, stderr
    saved, records = int(found.group(1).replace(",", "")), read_jsonl(out)
    assert 40 <= saved == len(records) < len(names) and len({r["path"] for r in records}) == saved
    browse = report.read_text().split('<section id="browse">')[1].split("</section>")[0]
    assert browse.count('src="data:image/jpeg;base64,') == saved  # the report's grid covers what is done
    rerun = wanwu(shared_home, "tag", str(lib), "--out", str(out), "--batch-size", "8", "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["skipped"], summary["tagged"]) == (saved, len(names) - saved)
    assert sorted(r["path"] for r in read_jsonl(out)) == sorted(names)


def test_xmp_in_a_read_only_folder_and_odd_names_get_a_message_each_and_the_records(shared_home: Path, examples_dir: Path,
                                                                                     tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for folder, name, source in (("ok", 'a "quoted" name.jpg', "chelsea.jpg"), ("ok", os.fsdecode(b"caf\xe9.jpg"), "coffee.jpg"),
                                 ("ro", "b.jpg", "camera.jpg")):  # real photos: the model is sure enough for keywords
        (lib / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(examples_dir / source, lib / folder / name)  # the second: a name that is not UTF-8
    (lib / "ro").chmod(0o555)
    # root writes into any folder: drop the capability that lets it, so `ro` is read-only as for anyone else
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    if prefix and not shutil.which("setpriv"):
        pytest.fail("running as root needs setpriv (util-linux) to make a folder read-only")
    try:
        proc = wanwu(shared_home, "tag", str(lib), "--out", str(tmp_path / "tags.jsonl"), "--xmp", prefix=prefix)
    finally:
        (lib / "ro").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert f"wanwu: warning: cannot write {lib}/ro/b.jpg.xmp: Permission denied" in proc.stderr
    assert "XMP sidecars: written 2, unchanged 0, left alone 1" in proc.stdout
    assert len(read_jsonl(tmp_path / "tags.jsonl")) == 3 and not (lib / "ro" / "b.jpg.xmp").exists()
    assert (lib / "ok" / 'a "quoted" name.jpg.xmp').exists() and (lib / "ok" / os.fsdecode(b"caf\xe9.jpg.xmp")).exists()
