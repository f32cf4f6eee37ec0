"""Tests of the step cache: content hashes and config slices, not file existence."""

import json

from neuro_sae.pipeline import StepCache


def test_cache_invalidation(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("a")
    out = tmp_path / "out.txt"
    cache = StepCache(tmp_path / ".cache", "step", dict(tmax=0.5), [inp])
    assert not cache.is_done()
    out.write_text("result")
    cache.done([out])
    assert cache.is_done()
    rec = json.loads((tmp_path / ".cache" / "step.json").read_text())
    assert str(out) in rec["outputs"]
    # a changed config slice reruns
    assert not StepCache(tmp_path / ".cache", "step", dict(tmax=0.6), [inp]).is_done()
    # changed input content reruns
    inp.write_text("b")
    assert not cache.is_done()
    inp.write_text("a")
    assert cache.is_done()
    # an output edited by hand reruns
    out.write_text("edited")
    assert not cache.is_done()
