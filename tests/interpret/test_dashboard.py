"""The feature dashboard, opened in a real browser (headless Chromium)."""

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from neuro_sae.interpret import (
    assign_domains,
    build_dashboard,
    feature_page,
    feature_stats,
    label_search,
    read_dashboard,
)
from neuro_sae.utils import find_system
from tests.interpret._fixtures import planted_audio_codes

CHROMIUM = find_system("chromium")
# skipped without Chromium locally; a failure under CI=true (tests/conftest.py)
needs_chromium = pytest.mark.requires_system("chromium")


def open_in_chromium(page, tmp_path, *, screenshot=None):
    """Open a local page headless; return (DOM after scripts ran, console lines)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=4000", "--window-size=1100,900"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    res = subprocess.run(args + [Path(page).resolve().as_uri()], capture_output=True,
                         text=True, timeout=90, check=False)
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]
    return res.stdout, console


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(codes, index.html) of a dashboard of two planted features (built once)."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    codes = planted_audio_codes(tmp_path / "clips")
    stats = feature_stats(codes, verbose=False)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 0.1, 0.2], [0, 1, 0])
    ax.set(xlabel="lag (s)", ylabel="TRF weight")
    trf = {1: dict(figure=fig, table=pd.DataFrame(dict(channel=["Pz"], r=[0.12], p=[0.004])))}
    index = build_dashboard(
        codes, tmp_path / "dash", features=[1, 2], n_examples=2, stats=stats,
        assignment=assign_domains(stats, verbose=False),
        label_hits=label_search(codes, verbose=False), trf=trf, verbose=False)
    plt.close("all")
    return codes, index


def test_dashboard_files(dashboard):
    codes, index = dashboard
    root = index.parent
    summary = read_dashboard(root)
    assert sorted(summary["features"]) == ["1", "2"]
    assert summary["features"]["1"]["best_label"] == "tone"
    assert summary["features"]["2"]["best_label"] == "noise"
    assert summary["features"]["2"]["domain"] == "sounds"
    text = index.read_text()
    assert feature_page(1) in text and "http" not in text
    page = (root / feature_page(1)).read_text()
    srcs = re.findall(r'src="([^"]+)"', page)
    assert sum(s.endswith(".wav") for s in srcs) == 2
    for s in srcs:  # every source resolves on disk, relative to the page
        assert (root / "features" / s).resolve().is_file(), s
    assert "Pz" in page and "http://" not in page and "https://" not in page
    with pytest.raises(FileExistsError, match="overwrite"):
        build_dashboard(codes, root, features=[1], verbose=False)
    with pytest.raises(ValueError, match="not among"):
        build_dashboard(codes, root.parent / "other", features=[7], verbose=False)
    assert not (root.parent / "other").exists()


@needs_chromium
def test_dashboard_in_headless_chromium(dashboard, tmp_path):
    from PIL import Image

    _, index = dashboard
    root = index.parent
    dom, console = open_in_chromium(index, tmp_path)
    assert console == [], console
    assert 'id="features"' in dom and "feature_00002.html" in dom
    for f in (1, 2):
        dom, console = open_in_chromium(root / feature_page(f), tmp_path)
        assert console == [], console
        n_audio = (root / feature_page(f)).read_text().count("<audio ")
        assert n_audio == (2 if f == 1 else 1)  # feature 2 fires in one clip only
        states = re.findall(r'<audio[^>]*data-state="(\w+)"', dom)
        assert states == ["ok"] * n_audio, states
        img_states = re.findall(r'<img[^>]*data-state="(\w+)"', dom)
        assert img_states and set(img_states) == {"ok"}, img_states
    shot = tmp_path / "index.png"
    open_in_chromium(index, tmp_path, screenshot=shot)
    img = np.asarray(Image.open(shot).convert("L"), float)
    assert img.shape[0] > 100 and img.std() > 5  # not blank
    assert len(np.unique(img)) > 10


@needs_chromium
def test_browser_check_catches_broken_pages(dashboard, tmp_path):
    """The checks above can fail: a missing audio file and a script error are seen."""
    root = tmp_path / "broken"
    shutil.copytree(dashboard[1].parent, root)
    page = root / feature_page(1)
    wav = re.findall(r'src="\.\./(audio/[^"]+\.wav)"', page.read_text())[0]
    (root / wav).unlink()
    page.write_text(page.read_text().replace("</body>", "<script>undefined_fn();</script></body>"))
    dom, console = open_in_chromium(page, tmp_path)
    assert re.findall(r'<audio[^>]*data-state="(\w+)"', dom) == ["error", "ok"]
    assert any("undefined_fn" in ln for ln in console)
