"""The interpret step of the tiny study: tables and a dashboard, significant features first."""

import pandas as pd
import pytest

from neuro_sae.features import read_feature_series
from neuro_sae.interpret import feature_page, read_dashboard, read_interpretation
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths, sae_layers

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*edge of the alpha grid.*:UserWarning",
    "ignore:.*grid edge.*:UserWarning",
    "ignore:.*FDR cannot reject.*:UserWarning",
)


def test_study_writes_interpretation_and_dashboard(built_study):
    man = load_manifest(built_study / "tiny.yaml")
    paths = StudyPaths(man.derivatives)
    layer = sae_layers(man, paths)[-1]
    folder = paths.sae_dir(layer).parents[1] / "interpret" / f"layer-{layer:02d}"
    res = read_interpretation(folder / "tables")
    fs = read_feature_series(paths.features(man.stimuli.runs[0].id, layer))
    assert sorted(res["stats"]["feature"].unique()) == sorted(fs.feature_ids.tolist())
    dash = read_dashboard(folder / "dashboard")
    shown = [int(f) for f in dash["features"]]
    sig = pd.read_parquet(paths.significant_table(layer))
    n_sig = len(sig)
    assert shown[:n_sig] == [int(f) for f in sig["feature"]]  # significant features first
    for f in sig["feature"].head(3):
        page = (folder / "dashboard" / feature_page(int(f))).read_text()
        assert f"trf_{int(f):05d}.png" in page and "<audio " in page
        assert str(sig.set_index("feature").loc[f, "best_channel"]) in page


def test_report_links_significant_features_to_the_dashboard(built_study, tmp_path):
    from neuro_sae.report import make_subject_report
    from tests.pipeline.conftest import copy_study

    man = load_manifest(copy_study(built_study, tmp_path / "study"))
    paths = StudyPaths(man.derivatives)
    layer = sae_layers(man, paths)[-1]
    sig = pd.read_parquet(paths.significant_table(layer))
    subject = man.subjects[0]
    html = make_subject_report(man, man.derivatives, subject, verbose=False).read_text()
    assert len(sig)  # planted responses: significant features at group level
    # the subject's significant features get the interpretation table with dashboard links
    assert "Interpretation of the significant features" in html
    assert "../stimuli/interpret/" in html and "/dashboard/features/feature_" in html
