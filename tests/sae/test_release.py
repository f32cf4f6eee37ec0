"""Release SAEs: float16 checkpoints, the release writer, lookup by name through entry points,
choosing the released seed from a training run, and the installed neuro-sae/whisper-base."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from neuro_sae.sae import list_sae_releases, load_sae, read_release, write_sae_release
from tests.sae.release_helpers import frames, install_fake_release, tiny_sae


def _dtypes(fname):
    with safe_open(str(fname), framework="pt") as f:
        return {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 - safe_open has no iter


def test_save_float16_roundtrip(tmp_path):
    sae = tiny_sae(2)
    sae.save(tmp_path / "fp32", verbose=False)
    sae.save(tmp_path / "fp16", dtype="float16", verbose=False)
    assert _dtypes(tmp_path / "fp32" / "sae.safetensors") == {torch.float32}
    assert _dtypes(tmp_path / "fp16" / "sae.safetensors") == {torch.float16}
    size32 = (tmp_path / "fp32" / "sae.safetensors").stat().st_size
    assert (tmp_path / "fp16" / "sae.safetensors").stat().st_size < 0.6 * size32
    back = load_sae(tmp_path / "fp16", verbose=False)
    for name, t in sae.state_dict().items():
        got = back.state_dict()[name]
        assert got.dtype == torch.float32  # read into the float32 parameters
        torch.testing.assert_close(got, t.half().float(), rtol=0, atol=0)  # exactly fp16-rounded
    assert json.loads((tmp_path / "fp16" / "cfg.json").read_text())["weights_dtype"] == "float16"
    x = frames(37)
    # float16 rounding (relative 2**-11 per weight) moves codes by far less than 5e-3
    torch.testing.assert_close(back.encode(x, "topk"), sae.encode(x, "topk"), atol=5e-3, rtol=1e-2)
    torch.testing.assert_close(back(x), sae(x), atol=5e-3, rtol=1e-2)
    with pytest.raises(ValueError, match=r"'dtype'.*'float32' and 'float16'.*'bfloat16'"):
        sae.save(tmp_path / "bad", dtype="bfloat16", verbose=False)
    assert not (tmp_path / "bad").exists()


def test_release_written_and_loaded_by_name(tmp_path, monkeypatch):
    saes = {2: tiny_sae(2), 3: tiny_sae(3, seed=1)}
    records = {3: dict(heldout_fvu=0.25, snapshot=dict(kind="final", step=33))}
    folder = install_fake_release(monkeypatch, tmp_path, saes, records=records)
    for layer in (2, 3):  # float16 on disk
        assert _dtypes(folder / f"layer_{layer}" / "sae.safetensors") == {torch.float16}
    rel = json.loads((folder / "release.json").read_text())
    assert rel["name"] == "neuro-sae/tiny-test" and rel["backbone"] == "tiny-bb"
    assert rel["layers"] == [2, 3] and rel["dtype"] == "float16"
    rec = rel["records"]["3"]
    assert rec["frames_seen"] == 33 * 64 and rec["batch_size"] == 64 and rec["lr"] == 1e-3
    assert rec["seed"] == 1 and rec["heldout_fvu"] == 0.25 and rec["snapshot"]["step"] == 33
    assert set(rel["files"]) == {f"layer_{n}/{f}" for n in (2, 3) for f in ("cfg.json", "sae.safetensors")}

    sae = load_sae("neuro-sae/tiny-test", layer=3, verbose=False)
    for name, t in saes[3].state_dict().items():
        torch.testing.assert_close(sae.state_dict()[name], t.half().float(), rtol=0, atol=0)
    assert sae.cfg.d_sae == 48 and sae.cfg.layer == 3
    meta = sae.metadata["release"]
    assert meta["name"] == "neuro-sae/tiny-test" and meta["frames_seen"] == 33 * 64
    assert meta["hash"] == read_release("neuro-sae/tiny-test")["hash"]
    listed = list_sae_releases(verbose=False)
    assert listed["neuro-sae/tiny-test"]["layers"] == [2, 3]
    assert listed["neuro-sae/tiny-test"]["backbone"] == "tiny-bb"
    assert listed["neuro-sae/tiny-test"]["with_weights"] == [2, 3]

    with pytest.raises(ValueError, match=r"layer= one of its layers \[2, 3\], got 5"):
        load_sae("neuro-sae/tiny-test", layer=5, verbose=False)
    with pytest.raises(ValueError, match=r"(?s)'neuro-sae/whisper-huge' is not installed.*"
                                         r"neuro-sae/tiny-test.*pip install --no-deps "
                                         r"\./data_manifests/releases/neuro-sae-whisper-huge.*make venv"):
        load_sae("neuro-sae/whisper-huge", layer=1, verbose=False)
    (folder / "layer_2" / "sae.safetensors").unlink()  # a package installed without its weights
    with pytest.raises(FileNotFoundError, match=r"(?s)layer_2/sae\.safetensors is missing.*09b_release_saes"):
        load_sae("neuro-sae/tiny-test", layer=2, verbose=False)
    assert list_sae_releases(verbose=False)["neuro-sae/tiny-test"]["with_weights"] == [3]


def test_release_writer_checks_and_is_idempotent(tmp_path):
    saes = {2: tiny_sae(2), 3: tiny_sae(3)}
    out = tmp_path / "rel"
    write_sae_release(saes, out, name="x/y", backbone="tiny-bb", verbose=False)
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_sae_release(saes, out, name="x/y", backbone="tiny-bb", verbose=False)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == first
    write_sae_release({3: saes[3]}, out, name="x/y", backbone="tiny-bb", verbose=False)
    assert not (out / "layer_2").exists() and read_release(out)["layers"] == [3]  # stale layer removed
    with pytest.raises(ValueError, match="trained on layer 2"):
        write_sae_release({4: saes[2]}, out, name="x/y", backbone="tiny-bb", verbose=False)
    with pytest.raises(ValueError, match="reads 'tiny-bb', not backbone='whisper-base'"):
        write_sae_release(saes, out, name="x/y", backbone="whisper-base", verbose=False)
    with pytest.raises(ValueError, match=r"records names layers \[7\]"):
        write_sae_release(saes, out, name="x/y", backbone="tiny-bb", records={7: {}}, verbose=False)


def test_run_candidates_most_advanced_per_seed(tmp_path):
    from neuro_sae.sae._release import most_advanced, run_candidates

    budget = tmp_path / "run" / "budget_1e05_layers-2"
    for sub, steps in (("train/snapshots/step-0000010/layer-2_seed-0", 10),
                       ("train/step-0000020/layer-2_seed-0", 20),
                       ("saes/layer-02_seed-1", 40), ("train/snapshots/step-0000040/layer-2_seed-1", 40)):
        sae = tiny_sae(2)
        sae.train_info = dict(n_steps_done=steps, train_config=dict(batch_size=64))
        sae.save(budget / sub, verbose=False)
    cands = run_candidates(tmp_path / "run")
    assert len(cands) == 4 and {c["layer"] for c in cands} == {2}
    best = most_advanced(cands, 2)
    assert best[0]["kind"] == "checkpoint" and best[0]["frames"] == 20 * 64
    assert best[1]["kind"] == "final"  # a tie in steps: the finished model


def test_installed_whisper_base_release():
    releases = list_sae_releases(verbose=False)
    if "neuro-sae/whisper-base" not in releases:
        pytest.skip("the data package neuro-sae-whisper-base is not installed: pip install "
                    "--no-deps ./data_manifests/releases/neuro-sae-whisper-base (or make venv)")
    rel = releases["neuro-sae/whisper-base"]
    assert rel["backbone"] == "whisper-base" and set(rel["layers"]) <= set(range(1, 7))
    if not rel["with_weights"]:
        pytest.skip("the installed neuro-sae-whisper-base has no weights yet (the lead writes "
                    "them with analyses/09b_release_saes.py and commits them)")
    layer = rel["with_weights"][-1]
    sae = load_sae("neuro-sae/whisper-base", layer=layer, verbose=False)
    assert sae.cfg.d_in == 512 and sae.cfg.backbone == "whisper-base" and sae.cfg.layer == layer
    assert sae.has_threshold and np.isfinite(sae.threshold_summary())
    assert sae.metadata["release"]["frames_seen"] > 0
