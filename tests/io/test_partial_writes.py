"""What a killed atomic write leaves behind is removed before the next write."""

import os
import signal
import subprocess
import sys

from neuro_sae.io import atomic_dir, atomic_path, remove_partial_writes


def test_killed_atomic_write_leaves_a_temp_that_remove_partial_writes_clears(tmp_path):
    target = tmp_path / "sub-01_results.parquet"
    target.write_text("previous")
    code = (
        "import sys, time\n"
        "from neuro_sae.io import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert target.read_text() == "previous"  # never half-written
    assert len(left) == 2 and left[0].startswith(".sub-01_results.parquet.")
    other = tmp_path / ".other.parquet.abc.tmp.parquet"  # another file's temp: kept
    other.write_text("x")
    removed = remove_partial_writes(target)
    assert [p.name for p in removed] == [left[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, target.name]
    assert remove_partial_writes(target) == []


def test_remove_partial_writes_in_and_beside_a_folder(tmp_path):
    folder = tmp_path / "dashboard"
    with atomic_dir(folder) as tmp:
        (tmp / "index.html").write_text("ok")
    stale_dir = tmp_path / ".dashboard.k2j3.tmp"
    stale_dir.mkdir()
    (stale_dir / "a.html").write_text("half")
    inner = folder / ".index.html.x1y2.tmp.html"
    inner.write_text("half")
    removed = remove_partial_writes(folder)
    assert {p.name for p in removed} == {stale_dir.name, inner.name}
    assert [p.name for p in folder.iterdir()] == ["index.html"]
    with atomic_path(folder / "index.html") as tmp:  # writing again works as before
        tmp.write_text("new")
    assert (folder / "index.html").read_text() == "new"
