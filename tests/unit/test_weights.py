"""The weight store: resolution order, verification, atomic downloads from a local server, offline errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import serve_directory
from wanwu.errors import WeightsError, WeightsMissingError, WeightsVerificationError
from wanwu.models import get_model_spec
from wanwu.models import registry as model_registry
from wanwu.store import Layout
from wanwu.weights import download_weights, resolve_weights, sha256_file, torch_hub_dir

RESNET = get_model_spec("resnet18")


@pytest.fixture()
def synthetic_resnet(resnet18_checkpoint: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The registry's resnet18 entry, with the hash of our synthesized file in place of the official one.

    Everything else (file name, URL, loading path) is the real entry, so the download, verification
    and strict-loading code under test is the code users run.
    """
    digest = sha256_file(resnet18_checkpoint)
    weights = replace(RESNET.weights, hash_prefix=digest[:8], num_bytes=resnet18_checkpoint.stat().st_size)
    spec = replace(RESNET, weights=weights)
    monkeypatch.setitem(model_registry._REGISTRY, "resnet18", spec)
    return spec, digest


@pytest.fixture()
def mirror(synthetic_resnet, resnet18_checkpoint: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:  # type: ignore[no-untyped-def]
    """The synthesized checkpoint served by a local HTTP server under the registry's file name: (file, URL)."""
    spec, _ = synthetic_resnet
    served = tmp_path / "mirror"
    served.mkdir()
    shutil.copy(resnet18_checkpoint, served / spec.weights.file_name)
    with serve_directory(served) as base:
        yield served / spec.weights.file_name, f"{base}/{spec.weights.file_name}"


def test_explicit_weights_are_reported_by_their_own_hash(resnet18_checkpoint: Path, tmp_path: Path) -> None:
    found = resolve_weights(RESNET, tmp_path, explicit=resnet18_checkpoint)
    assert (found.source, found.sha256, found.official) == ("explicit", sha256_file(resnet18_checkpoint), False)


def test_missing_explicit_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match="nope.pth does not exist"):
        resolve_weights(RESNET, tmp_path, explicit=tmp_path / "nope.pth")


def test_offline_error_names_file_url_and_destination(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError) as info:
        resolve_weights(RESNET, tmp_path)
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(Layout(tmp_path).weights / "resnet18-f37072fd.pth") in message
    assert "wanwu fetch resnet18" in message


def test_store_comes_before_torch_hub(synthetic_resnet, resnet18_checkpoint: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, digest = synthetic_resnet
    hub = torch_hub_dir() / spec.weights.file_name
    hub.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(resnet18_checkpoint, hub)
    try:
        assert resolve_weights(spec, tmp_path).source == "torch-hub"
        store = Layout(tmp_path).weights / spec.weights.file_name
        store.parent.mkdir(parents=True)
        shutil.copy(resnet18_checkpoint, store)
        found = resolve_weights(spec, tmp_path)
        assert (found.source, found.path, found.sha256) == ("store", store, digest)
    finally:
        hub.unlink()


def test_tampered_file_in_store_is_refused(synthetic_resnet, resnet18_checkpoint: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, _ = synthetic_resnet
    store = Layout(tmp_path).weights / spec.weights.file_name
    store.parent.mkdir(parents=True)
    data = bytearray(resnet18_checkpoint.read_bytes())
    data[-100] ^= 0xFF
    store.write_bytes(bytes(data))
    with pytest.raises(WeightsVerificationError, match="failed verification: SHA-256 .* does not match the expected"):
        resolve_weights(spec, tmp_path)


def test_download_verifies_and_writes_atomically(synthetic_resnet, mirror, resnet18_checkpoint: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, digest = synthetic_resnet
    seen: list[int] = []
    found = download_weights(spec, tmp_path / "home", url=mirror[1], progress=lambda total, name: seen.append)
    assert (found.source, found.sha256) == ("download", digest)
    assert found.path.read_bytes() == resnet18_checkpoint.read_bytes()
    assert sum(seen) == resnet18_checkpoint.stat().st_size
    assert [p.name for p in found.path.parent.iterdir()] == [spec.weights.file_name]  # no .part left


def test_truncated_download_is_refused_and_leaves_nothing(synthetic_resnet, mirror, resnet18_checkpoint: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, _ = synthetic_resnet
    served, url = mirror
    served.write_bytes(resnet18_checkpoint.read_bytes()[:1_000_000])
    with pytest.raises(WeightsVerificationError, match=r"truncated: 1000000 of"):
        download_weights(spec, tmp_path / "home", url=url)
    assert list(Layout(tmp_path / "home").weights.iterdir()) == []


def test_unreachable_server_gives_the_offline_message(tmp_path: Path) -> None:
    with serve_directory(tmp_path) as base:
        pass  # the server is gone: connection refused, as offline
    with pytest.raises(WeightsMissingError, match=r"could not download .* Run `wanwu fetch resnet18`"):
        download_weights(RESNET, tmp_path / "home", url=f"{base}/resnet18-f37072fd.pth", timeout=2)


def test_a_file_that_is_not_a_checkpoint_is_refused_on_load(tmp_path: Path) -> None:
    from wanwu.models.build import load_torch_model

    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="is not a resnet18 checkpoint that loads strictly"):
        load_torch_model(RESNET, bogus)


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    import torch

    from wanwu.models.build import load_torch_model

    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(10, 512)}, other)
    with pytest.raises(WeightsError, match="loads strictly"):
        load_torch_model(RESNET, other)


def test_cli_fetch_downloads_verifies_and_loads_strictly(synthetic_resnet, mirror, resnet18_checkpoint: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`wanwu fetch` end to end against a local server; the fetched model's logits equal the original's."""
    import torch

    from wanwu.cli import main
    from wanwu.models.build import load_torch_model
    from wanwu.models.resnet import resnet18

    spec, digest = synthetic_resnet
    home = tmp_path / "home"
    assert main(["--home", str(home), "fetch", "resnet18", "--url", mirror[1], "--no-int8"]) == 0
    assert f"sha256 {digest}, download" in capsys.readouterr().out

    reference = resnet18()
    reference.load_state_dict(torch.load(resnet18_checkpoint, weights_only=True))
    fetched = load_torch_model(spec, Layout(home).weights / spec.weights.file_name)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(fetched(x), reference.eval()(x))


def test_cli_fetch_refuses_a_tampered_mirror(synthetic_resnet, mirror, resnet18_checkpoint: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from wanwu.cli import main

    spec, _ = synthetic_resnet
    served, url = mirror
    data = bytearray(resnet18_checkpoint.read_bytes())
    data[5000] ^= 0x01
    served.write_bytes(bytes(data))
    assert main(["--home", str(tmp_path / "home"), "fetch", "resnet18", "--url", url, "--no-int8"]) == 1
    err = capsys.readouterr().err
    assert "wanwu: error:" in err and "failed verification" in err
    assert not (Layout(tmp_path / "home").weights / spec.weights.file_name).exists()


@pytest.mark.slow
def test_cli_fetch_also_makes_the_int8_version_auto_can_pick(mirror, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Like `make setup` for the bundled model: the fetched weights get an INT8 version from the shipped photos."""
    pytest.importorskip("nncf")
    from tests.helpers import open_model
    from wanwu.cli import main
    from wanwu.precision.auto import ready_precisions
    from wanwu.precision.calibration import shipped_photos
    from wanwu.precision.int8 import int8_artifacts

    home = tmp_path / "home"
    assert main(["--home", str(home), "fetch", "resnet18", "--url", mirror[1]]) == 0
    out = capsys.readouterr().out
    assert "int8 vs fp32 on" in out and "calibration views" in out
    assert "--precision auto (the default) runs it" in out or "auto keeps fp32" in out  # said either way

    source = open_model("resnet18", home, None)
    [artifact] = int8_artifacts(source.bundle, "openvino")
    shipped = sorted(p.name for p in shipped_photos().glob("*.jpg"))
    assert len(shipped) == 5 and artifact.calibration["files"] == shipped
    assert artifact.report is not None and 0.0 <= artifact.report["top1_agreement"] <= 1.0
    ready, skipped = ready_precisions("openvino", source)  # random weights: ready or refused, by the stored agreement
    assert "int8" in ready or "below 98%" in skipped["int8"]

    assert main(["--home", str(home), "fetch", "resnet18"]) == 0  # weights found, the same artifact reused
    assert [a.path for a in int8_artifacts(source.bundle, "openvino")] == [artifact.path]


def test_cli_fetch_without_nncf_says_how_to_get_int8(mirror, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    from wanwu.cli import main

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else find_spec(name, *a))
    assert main(["--home", str(tmp_path / "home"), "fetch", "resnet18", "--url", mirror[1]]) == 0
    err = capsys.readouterr().err
    assert "no INT8 version made: it needs nncf (pip install 'wanwu[quantize]')" in err
    from wanwu.cli.common import command_name

    assert f"`{command_name()} quantize resnet18`" in err  # a command that runs, whether or not `wanwu` is on PATH
