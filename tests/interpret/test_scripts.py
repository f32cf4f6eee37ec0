"""The figure scripts and analyses/07_interpret.py run on saved interpretations."""

import importlib.util
from pathlib import Path

import pytest

from neuro_sae.interpret import interpret_codes, plot_corpus_figures, save_interpretation
from tests.interpret.test_study import _vowel_codes

ROOT = Path(__file__).resolve().parents[2]


def _load(path):
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def interp_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("interp")
    codes = _vowel_codes()
    for layer, acc in ((2, 0.4), (5, 0.7)):
        codes.layer = layer
        res = interpret_codes(codes, erasure_steps=4, probe_ks=[1, 4], probe_target="codes",
                              random_state=0, verbose=False)
        res["summary"]["phonemes"] = dict(in_sample=acc, test=acc - 0.1, chance=0.1,
                                          chance_sd=0.01, probe=0.8, majority=0.2)
        save_interpretation(res, root / f"layer-{layer:02d}", verbose=False)
    return root


def test_figure_scripts(interp_dir, tmp_path):
    import matplotlib.image as mpimg

    for script, files in (
        ("figures/fig_interpret_domains.py", ["fig_interpret_domains.png",
                                              "fig_interpret_freq_vs_act.png"]),
        ("figures/fig_interpret_phonemes.py", ["fig_interpret_phonemes.png", "phonemes.csv"]),
        ("figures/fig_interpret_erasure.py", ["fig_interpret_erasure.png",
                                              "fig_interpret_probing.png"]),
    ):
        _load(script).main(["--interpretation", str(interp_dir), "--out", str(tmp_path)])
        for f in files:
            assert (tmp_path / f).is_file(), f
    img = mpimg.imread(tmp_path / "fig_interpret_domains.png")
    assert img.std() > 0.05
    assert (tmp_path / "phonemes.csv").read_text().count("\n") == 3
    written = plot_corpus_figures(interp_dir, verbose=False)
    assert {p.name for p in written} >= {"fig_domains_frame.png", "fig_phonemes.png",
                                         "fig_erasure.png"}


def test_analysis_script_needs_derivatives(tmp_path):
    mod = _load("analyses/07_interpret.py")
    with pytest.raises(SystemExit, match="--derivatives"):
        mod.main(["--corpus", str(tmp_path), "--verbose", "WARNING"])
    with pytest.raises(FileNotFoundError, match="09_corpus_saes"):
        mod.main(["--corpus", str(tmp_path), "--derivatives", str(tmp_path), "--out",
                  str(tmp_path / "o"), "--verbose", "WARNING"])
