"""Content hashes, relative labels and change explanations of the step records."""

from neuro_sae.pipeline._cache import Labels, explain_change, flatten, hash_path


def test_hash_path_files_and_trees(tmp_path):
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "sub" / "x.bin").write_bytes(b"one")
    (a / "y.bin").write_bytes(b"two")
    h = hash_path(a)
    assert h.startswith("tree:")
    # moving the folder keeps its hash; renaming a file inside it does not
    b = tmp_path / "moved"
    a.rename(b)
    assert hash_path(b) == h
    (b / "sub" / "x.bin").rename(b / "sub" / "z.bin")
    assert hash_path(b) != h
    # same content, same file hash; a rewrite with other bytes changes it
    f = b / "y.bin"
    h1 = hash_path(f)
    f.write_bytes(b"two")
    assert hash_path(f) == h1
    f.write_bytes(b"tw0")
    assert hash_path(f) != h1
    assert hash_path(tmp_path / "absent") is None


def test_labels_are_relative_and_invertible(tmp_path):
    deriv, stim, man = tmp_path / "d", tmp_path / "s", tmp_path / "m"
    labels = Labels([("", deriv), ("stimuli", stim), ("manifest", man)])
    assert labels.label(deriv / "sub-01" / "x.npz") == "sub-01/x.npz"
    assert labels.label(stim / "a" / "x.wav") == "stimuli:a/x.wav"
    assert labels.label(stim / "b" / "x.wav") == "stimuli:b/x.wav"
    assert labels.label(tmp_path / "other" / "f.txt") == "manifest:../other/f.txt"
    for p in (deriv / "sub-01" / "x.npz", stim / "a" / "x.wav", tmp_path / "other" / "f.txt"):
        assert labels.path(labels.label(p)) == p


def test_explain_change_names_settings_and_files():
    old = dict(config=dict(trf=dict(tmin=-0.1, tmax=0.5)), inputs={"a.wav": "1", "b.wav": "2"},
               producers={"01_extract": "k1"}, version="1")  # fmt: skip
    new = dict(config=dict(trf=dict(tmin=-0.1, tmax=0.6, edge_s=0.1)), inputs={"a.wav": "1", "b.wav": "3"},
               producers={"01_extract": "k2"}, version="1")  # fmt: skip
    assert explain_change(old, new) == [
        "trf.edge_s was added (0.1)",
        "trf.tmax changed from 0.5 to 0.6",
        "input b.wav changed",
        "its producer 01_extract is not the run it was made from",
    ]
    assert flatten(dict(a=dict(b=1, c=dict(d=[1, 2])), e={})) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
