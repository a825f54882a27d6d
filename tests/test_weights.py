"""Weight resolution, SHA-256 checks, downloads (local only) and safe loading."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import io
import shutil
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import conversenet.weights as cw
from conversenet import create_model
from conversenet.models import PretrainedWeights, get_model_info
from conversenet.weights import WeightsChecksumError, WeightsNotFoundError

from conftest import need_shared

TINY_DNCNN = {"num_blocks": 1, "num_features": 4}
DNCNN_WEIGHTS = get_model_info("converse_dncnn").pretrained


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No CONVERSENET_WEIGHTS, a private cache, and no network: urlopen only opens file://."""
    monkeypatch.delenv(cw.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)


def _tiny_weights(tmp_path, filename: str = "tiny.pth") -> tuple[PretrainedWeights, bytes]:
    """A small real checkpoint on a local 'server' folder, registered as official."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(create_model("converse_dncnn", **TINY_DNCNN).state_dict(), buffer)
    data = buffer.getvalue()
    server = tmp_path / "server"
    server.mkdir(exist_ok=True)
    (server / filename).write_bytes(data)
    weights = PretrainedWeights(
        filename=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        url=(server / filename).as_uri(),
    )
    return weights, data


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir_follows_xdg_and_home(monkeypatch, tmp_path):
    assert cw.cache_dir() == tmp_path / "xdg" / "conversenet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cw.cache_dir() == tmp_path / "home" / ".cache" / "conversenet"


def test_weights_dir_candidates_order(monkeypatch, tmp_path):
    assert cw.weights_dir_candidates() == [cw.cache_dir()]
    monkeypatch.setenv(cw.ENV_WEIGHTS, str(tmp_path / "mine"))
    assert cw.weights_dir_candidates() == [tmp_path / "mine", cw.cache_dir()]


def test_packaged_weights_have_one_route(monkeypatch, tmp_path):
    """Weights shipped in the package are found there only: a file of the same name in
    $CONVERSENET_WEIGHTS is not used, and there is nothing to download."""
    packaged = get_model_info("converse_dncnn_compact").pretrained
    assert packaged.packaged and packaged.url is None
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / packaged.filename).write_bytes(b"a stray copy")
    monkeypatch.setenv(cw.ENV_WEIGHTS, str(tmp_path / "mine"))
    path = cw.resolve_weights(packaged, download=False)
    assert path == cw.PACKAGED_WEIGHTS_DIR / packaged.filename
    with pytest.raises(ValueError, match="ships inside the package"):
        cw.download_weights(packaged)


def test_hub_is_a_deprecated_alias(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "conversenet.hub", raising=False)
    with pytest.warns(DeprecationWarning, match="conversenet.weights"):
        hub = importlib.import_module("conversenet.hub")
    assert hub.sha256sum is cw.sha256sum and hub.load_state_dict is cw.load_state_dict
    path = hub.resolve_weights("converse_dncnn_compact", download=False)  # a name, as before
    assert path == cw.PACKAGED_WEIGHTS_DIR / "converse_dncnn_compact.safetensors"


def test_resolution_order(monkeypatch, tmp_path):
    weights, data = _tiny_weights(tmp_path)
    explicit = tmp_path / "explicit" / weights.filename
    env_dir = tmp_path / "env"
    for folder in (explicit.parent, env_dir, cw.cache_dir()):
        folder.mkdir(parents=True)
        (folder / weights.filename).write_bytes(data)
    monkeypatch.setenv(cw.ENV_WEIGHTS, str(env_dir))

    assert cw.resolve_weights(weights, path=explicit) == explicit
    assert cw.resolve_weights(weights, path=explicit.parent) == explicit  # a folder
    assert cw.resolve_weights(weights) == env_dir / weights.filename
    (env_dir / weights.filename).unlink()
    assert cw.resolve_weights(weights) == cw.cache_dir() / weights.filename
    (cw.cache_dir() / weights.filename).unlink()
    # last resort: the download, into the cache
    assert cw.resolve_weights(weights, progress=False) == cw.cache_dir() / weights.filename
    assert (cw.cache_dir() / weights.filename).read_bytes() == data


def test_missing_explicit_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cw.resolve_weights(DNCNN_WEIGHTS, path=tmp_path / "nothing.pth")


def test_download_is_verified_and_atomic(tmp_path):
    weights, data = _tiny_weights(tmp_path)
    path = cw.download_weights(weights, progress=False)
    assert path.read_bytes() == data
    assert _leftovers(cw.cache_dir()) == [weights.filename]  # no temporary file left


def test_bad_download_is_deleted(tmp_path):
    weights, _ = _tiny_weights(tmp_path)
    wrong = dataclasses.replace(weights, sha256="0" * 64)
    with pytest.raises(WeightsChecksumError, match=r"expected 0{64}, got [0-9a-f]{64}") as err:
        cw.resolve_weights(wrong, progress=False)
    assert "deleted" in str(err.value)
    assert _leftovers(cw.cache_dir()) == []


def test_no_network_says_where_to_put_the_file(monkeypatch, tmp_path):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    info = get_model_info("converse_dncnn")
    with pytest.raises(WeightsNotFoundError) as err:
        create_model("converse_dncnn", pretrained=True)
    message = str(err.value)
    assert info.pretrained.url in message
    assert str(cw.cache_dir()) in message and cw.ENV_WEIGHTS in message
    assert "no route to host" in message
    assert _leftovers(cw.cache_dir()) == []

    monkeypatch.setenv(cw.ENV_WEIGHTS, str(tmp_path / "weights"))
    with pytest.raises(WeightsNotFoundError, match="downloading is disabled") as err:
        cw.resolve_weights(DNCNN_WEIGHTS, download=False)
    assert str(tmp_path / "weights") in str(err.value)


def test_download_interrupted_leaves_nothing(monkeypatch, tmp_path):
    weights, data = _tiny_weights(tmp_path)

    class Broken(io.BytesIO):
        def __init__(self, payload: bytes) -> None:
            super().__init__(payload)
            self.headers = {"Content-Length": str(len(payload))}

        def read(self, size=-1):
            if self.tell() > 100:
                raise ConnectionResetError("connection reset")
            return super().read(min(size, 64))

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken(data))
    with pytest.raises(WeightsNotFoundError, match="connection reset"):
        cw.download_weights(weights, progress=False)
    assert _leftovers(cw.cache_dir()) == []


def test_corrupted_official_file_is_refused(monkeypatch, tmp_path):
    official = need_shared("weights", "official", "converse_dncnn.pth")
    folder = tmp_path / "weights"
    folder.mkdir()
    bad = folder / official.name
    shutil.copyfile(official, bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    expected = get_model_info("converse_dncnn").pretrained.sha256
    actual = hashlib.sha256(raw).hexdigest()

    monkeypatch.setenv(cw.ENV_WEIGHTS, str(folder))
    # in the CONVERSENET_WEIGHTS folder: an error, and no fallback to the cache or network
    with pytest.raises(WeightsChecksumError) as err:
        create_model("converse_dncnn", pretrained=True)
    assert str(bad) in str(err.value)
    assert expected in str(err.value) and actual in str(err.value)
    # given explicitly: the same
    with pytest.raises(WeightsChecksumError, match=actual):
        create_model("converse_dncnn", weights=bad)
    with pytest.raises(WeightsChecksumError):
        cw.load_state_dict(bad, sha256=expected)


def test_good_official_copy_loads(monkeypatch, tmp_path):
    official = need_shared("weights", "official", "converse_dncnn.pth")
    monkeypatch.setenv(cw.ENV_WEIGHTS, str(official.parent))
    model = create_model("converse_dncnn", pretrained=True)
    state = torch.load(official, map_location="cpu", weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_user_weights_round_trip(tmp_path, suffix):
    torch.manual_seed(1)
    trained = create_model("converse_dncnn", **TINY_DNCNN)
    path = tmp_path / f"my_run{suffix}"
    if suffix == ".safetensors":
        save_file(trained.state_dict(), str(path))
    else:
        torch.save({"state_dict": trained.state_dict()}, path)  # a training-style container
    loaded = create_model("converse_dncnn", weights=path, **TINY_DNCNN).eval()
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trained.eval()(x), rtol=0, atol=0)


def test_user_weights_must_fit(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file(create_model("converse_dncnn", num_blocks=2, num_features=4).state_dict(), str(path))
    with pytest.raises(ValueError, match=r"unexpected keys \(14\): m_body\.1\."):
        create_model("converse_dncnn", weights=path, **TINY_DNCNN)
    with pytest.raises(ValueError, match=r"missing keys \(14\): m_body\.2\."):
        create_model("converse_dncnn", weights=path, num_blocks=3, num_features=4)


def test_data_parallel_prefix_is_removed(tmp_path):
    model = create_model("converse_dncnn", **TINY_DNCNN)
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    assert set(cw.load_state_dict(path)) == set(model.state_dict())


@pytest.mark.parametrize("ema", [True, False])
def test_a_training_checkpoint_gives_its_ema_weights(tmp_path, ema):
    torch.manual_seed(2)
    model = create_model("converse_dncnn", **TINY_DNCNN).state_dict()
    averaged = {k: v + 1 for k, v in model.items()}
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model, "ema": averaged if ema else None, "step": 7}, path)
    loaded = cw.load_state_dict(path)
    for key, value in (averaged if ema else model).items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_pickled_code_is_never_executed(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "hook": functools.partial(print, "pwned")}, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        cw.load_state_dict(path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        cw.load_state_dict(path)


def test_sha256sum(tmp_path):
    path = tmp_path / "bytes"
    path.write_bytes(b"conversenet" * 100_000)
    assert cw.sha256sum(path) == hashlib.sha256(b"conversenet" * 100_000).hexdigest()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_random_bytes_are_always_a_weights_file_error_naming_the_file(tmp_path, suffix):
    rng = np.random.default_rng(0)
    for i in range(60):
        path = tmp_path / f"junk{i}{suffix}"
        path.write_bytes(rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes())
        with pytest.raises(cw.WeightsFileError) as err:
            cw.load_state_dict(path)
        assert str(path) in str(err.value) and "weights_only=False" not in str(err.value)
