"""write_parquet keeps JSON-able attrs and leaves out the others (a steering grid carries
its per-clip table in attrs)."""

import pandas as pd

from neuro_sae.io import write_parquet


def test_attrs_that_json_cannot_hold_are_left_out(tmp_path):
    clips = pd.DataFrame({"id": ["a", "b"], "fpr": [0.0, 1.0]})
    grid = pd.DataFrame({"k": [10, 50], "alpha": [0.5, 1.0]})
    grid.attrs["skipped"] = [{"source": "music", "n_fit": 3}]
    grid.attrs["clips"] = clips
    write_parquet(grid, tmp_path / "grid.parquet")
    back = pd.read_parquet(tmp_path / "grid.parquet")
    pd.testing.assert_frame_equal(back, grid)
    assert back.attrs == {"skipped": [{"source": "music", "n_fit": 3}]}
    assert grid.attrs["clips"] is clips  # the caller's table is untouched
    assert list(tmp_path.iterdir()) == [tmp_path / "grid.parquet"]
