"""SAE codes of a set of labelled clips: the container every interpretation reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..utils import fill_doc, logger, validate_type, verbose

FRAME_RATE = 50.0


@dataclass
class ClipCodes:
    """SAE codes of labelled clips, frame by frame.

    Parameters
    ----------
    codes : scipy.sparse.csr_array, shape (n_frames, n_features)
        Non-negative SAE codes of every valid frame, clip after clip.
    frames : pandas.DataFrame
        One row per frame: ``clip_id`` and ``time`` (seconds from the clip's
        start, the centre of the frame's receptive field).
    clips : pandas.DataFrame
        The clip index rows of these clips (see :mod:`neuro_sae.corpora`):
        at least ``id``, ``domain`` and ``labels``; ``path``, ``duration`` and
        ``alignment`` where examples, audio or phones are wanted.
    feature_ids : ndarray of int, shape (n_features,)
        SAE feature index of each column.
    layer : int | None
        Layer of the backbone the SAE reads (1-based).
    root : str | None
        Folder the clip ``path`` and ``alignment`` columns are relative to.
    """

    codes: object
    frames: object
    clips: object
    feature_ids: np.ndarray = None
    layer: int | None = None
    root: str | None = None
    _slices: dict = field(default=None, repr=False)

    def __post_init__(self):
        import pandas as pd
        import scipy.sparse as sp

        self.codes = sp.csr_array(self.codes, dtype=np.float32)
        validate_type(self.frames, pd.DataFrame, "frames")
        validate_type(self.clips, pd.DataFrame, "clips")
        n_frames, n_features = self.codes.shape
        if len(self.frames) != n_frames:
            raise ValueError(
                f"frames has {len(self.frames)} rows but codes has {n_frames} frames; "
                "give one frame row (clip_id, time) per row of codes."
            )
        for col in ("clip_id", "time"):
            if col not in self.frames:
                raise ValueError(f"frames lacks the column {col!r} (needs clip_id, time).")
        for col in ("id", "domain", "labels"):
            if col not in self.clips:
                raise ValueError(
                    f"clips lacks the column {col!r}; pass rows of a clip index "
                    "(neuro_sae.corpora.read_clip_index)."
                )
        if self.codes.nnz and float(self.codes.data.min()) < 0:
            raise ValueError("codes must be non-negative SAE activations.")
        self.clips = self.clips.drop_duplicates("id").set_index("id", drop=False)
        self.clips.index.name = None
        ids = self.frames["clip_id"].to_numpy().astype(str)
        change = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        order = ids[change]
        if len(set(order)) != len(order):
            raise ValueError("frames of one clip must be consecutive rows of codes.")
        missing = sorted(set(order) - set(self.clips["id"].astype(str)))
        if missing:
            raise ValueError(
                f"{len(missing)} clip(s) of frames are not in clips, e.g. {missing[:3]}; "
                "pass the clip index rows of every encoded clip."
            )
        bounds = np.r_[change, len(ids)]
        self._slices = {c: slice(int(a), int(b)) for c, a, b in zip(order, bounds[:-1], bounds[1:])}
        self.clips = self.clips.loc[list(order)]
        if self.feature_ids is None:
            self.feature_ids = np.arange(n_features)
        self.feature_ids = np.asarray(self.feature_ids, dtype=int)
        if self.feature_ids.shape != (n_features,):
            raise ValueError(
                f"feature_ids has {len(self.feature_ids)} entries but codes has "
                f"{n_features} features."
            )

    def __repr__(self):
        return (
            f"<ClipCodes | {len(self.clip_ids)} clips, {self.codes.shape[0]} frames, "
            f"{self.codes.shape[1]} features, layer {self.layer}, "
            f"{self.codes.nnz / max(self.codes.shape[0], 1):.1f} active per frame>"
        )

    @property
    def clip_ids(self):
        """The clips, in frame order (list of str)."""
        return list(self._slices)

    @property
    def n_features(self):
        """Number of features (int)."""
        return self.codes.shape[1]

    def clip_slice(self, clip_id):
        """Rows of ``codes`` of one clip (a slice)."""
        try:
            return self._slices[str(clip_id)]
        except KeyError:
            raise KeyError(f"clip_id {clip_id!r} has no frames in these codes.") from None

    def subset(self, clip_ids):
        """The codes of some clips only (a new :class:`ClipCodes`).

        Parameters
        ----------
        clip_ids : sequence of str
            The clips to keep (in their order here).

        Returns
        -------
        codes : ClipCodes
            The subset.
        """
        keep = set(map(str, clip_ids))
        ids = [c for c in self._slices if c in keep]
        if not ids:
            raise ValueError("none of clip_ids has frames in these codes.")
        rows = np.concatenate([np.arange(self._slices[c].start, self._slices[c].stop)
                               for c in ids])
        return ClipCodes(self.codes[rows], self.frames.iloc[rows].reset_index(drop=True),
                         self.clips.loc[ids].reset_index(drop=True), self.feature_ids,
                         self.layer, self.root)

    def frame_clip(self):
        """Position of each frame's clip in :attr:`clip_ids` (ndarray of int)."""
        out = np.empty(self.codes.shape[0], int)
        for ii, sl in enumerate(self._slices.values()):
            out[sl] = ii
        return out

    def frame_domain(self):
        """Domain of each frame's clip (ndarray of str)."""
        return self.clips["domain"].to_numpy().astype(str)[self.frame_clip()]

    def pool(self, how="max"):
        """Pool the codes over the frames of each clip.

        Parameters
        ----------
        how : str
            ``"max"`` (the paper's) or ``"mean"``.

        Returns
        -------
        pooled : ndarray, shape (n_clips, n_features)
            One row per clip of :attr:`clip_ids`.
        """
        from ..utils import check_option

        check_option("how", how, ("max", "mean"))
        coo = self.codes.tocoo()
        clip = self.frame_clip()[coo.row]
        out = np.zeros((len(self._slices), self.n_features), np.float32)
        if how == "max":
            np.maximum.at(out, (clip, coo.col), coo.data)
        else:
            np.add.at(out, (clip, coo.col), coo.data)
            lengths = np.array([sl.stop - sl.start for sl in self._slices.values()])
            out /= np.maximum(lengths, 1)[:, None]
        return out

    def clip_labels(self):
        """Labels of each clip (list of set of str, in :attr:`clip_ids` order)."""
        return [set(map(str, ls)) if ls is not None else set()
                for ls in self.clips["labels"].tolist()]

    def path_of(self, clip_id, column="path"):
        """Absolute path of a clip's audio (or ``column="alignment"``) file, or None."""
        from pathlib import Path

        value = self.clips.loc[str(clip_id)].get(column)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        p = Path(str(value))
        if not p.is_absolute() and "root" in self.clips and isinstance(
                self.clips.loc[str(clip_id)].get("root"), str):
            p = Path(self.clips.loc[str(clip_id)]["root"]) / p
        elif not p.is_absolute() and self.root is not None:
            p = Path(self.root) / p
        return p


@fill_doc
@verbose
def make_clip_codes(arrays, clips, *, times=None, feature_ids=None, layer=None, root=None,
                    verbose=None):
    """Build :class:`ClipCodes` from one array of codes per clip.

    Parameters
    ----------
    arrays : dict
        ``clip_id -> array-like, shape (n_frames_i, n_features)`` (dense or sparse).
    clips : pandas.DataFrame
        Clip index rows (``id``, ``domain``, ``labels``, ...).
    times : dict | None
        ``clip_id -> ndarray of seconds`` per frame; ``None``: the 50 Hz clock
        ``0.02 * i`` (Whisper's frame times).
    feature_ids : array-like of int | None
        SAE feature index of each column (``None``: ``0 .. n_features - 1``).
    layer : int | None
        The layer.
    root : str | None
        Folder of the clips' relative paths.
    %(verbose)s

    Returns
    -------
    codes : ClipCodes
        The codes.
    """
    import pandas as pd
    import scipy.sparse as sp

    validate_type(arrays, dict, "arrays")
    if not arrays:
        raise ValueError("arrays is empty: give one code array per clip.")
    mats, frames = [], []
    for cid, arr in arrays.items():
        mat = sp.csr_array(arr, dtype=np.float32)
        t = (np.arange(mat.shape[0]) / FRAME_RATE if times is None
             else np.asarray(times[cid], float))
        if len(t) != mat.shape[0]:
            raise ValueError(f"times[{cid!r}] has {len(t)} entries for {mat.shape[0]} frames.")
        mats.append(mat)
        frames.append(pd.DataFrame(dict(clip_id=str(cid), time=t)))
    widths = {m.shape[1] for m in mats}
    if len(widths) != 1:
        raise ValueError(f"the code arrays have different widths {sorted(widths)}.")
    out = ClipCodes(sp.vstack(mats, format="csr"), pd.concat(frames, ignore_index=True),
                    clips, feature_ids=feature_ids, layer=layer, root=root)
    logger.info(f"Codes of {len(arrays)} clips: {out.codes.shape[0]} frames")
    return out


def _store_clip_frames(store, layer, members=None, clip_ids=None):
    """Yield ``(clip_id, times, activations)`` of each clip of an activation store.

    With ``members`` (the table of :func:`neuro_sae.sae.pack_clips`), the packs of
    the store are cut back into their clips (times relative to each clip's start).
    """
    keep = None if clip_ids is None else set(map(str, clip_ids))
    if members is None:
        for cid in store.index["clip_id"].unique():
            if keep is not None and str(cid) not in keep:
                continue
            acts = store.get_clip(cid, layers=[layer], verbose=False)
            yield str(cid), np.asarray(acts.times[acts.mask]), acts.get(layer)
        return
    for pack_id, group in members.groupby("pack_id", sort=False):
        if keep is not None and not keep.intersection(group["clip_id"].astype(str)):
            continue
        acts = store.get_clip(pack_id, layers=[layer], verbose=False)
        t = np.asarray(acts.times[acts.mask])
        x = acts.get(layer)
        for _, row in group.iterrows():
            if keep is not None and str(row["clip_id"]) not in keep:
                continue
            on, dur = float(row["onset_s"]), float(row["duration_s"])
            sel = (t >= on) & (t < on + dur)
            if sel.any():
                yield str(row["clip_id"]), t[sel] - on, x[sel]


@fill_doc
@verbose
def encode_clips(sae, store, clips, *, layer=None, members=None, mode=None, root=None,
                 return_activations=False, verbose=None):
    """Encode the clips of an activation store with an SAE.

    Parameters
    ----------
    sae : SparseAutoencoder
        The SAE (see :func:`neuro_sae.sae.load_sae`).
    store : ActivationStore
        The activation store (:func:`neuro_sae.activations.read_activation_store`).
    clips : pandas.DataFrame
        Clip index rows of the clips to encode (``id``, ``domain``, ``labels``, ...).
    layer : int | None
        Store layer to read; ``None``: the SAE's ``cfg.layer``.
    members : pandas.DataFrame | None
        The pack table of :func:`neuro_sae.sae.pack_clips` (``pack_id``,
        ``clip_id``, ``onset_s``, ``duration_s``) when the store holds packs
        of clips; ``None``: the store's clips are the clips.
    mode : str | None
        SAE inference mode (see :meth:`neuro_sae.sae.SparseAutoencoder.encode`).
    root : str | None
        Folder of the clips' relative paths.
    return_activations : bool | list of str
        Also return the raw activations (for probe baselines): of every clip
        (``True``) or of the listed clips.
    %(verbose)s

    Returns
    -------
    codes : ClipCodes
        The codes of every clip found in the store.
    activations : dict
        Only with ``return_activations``: ``clip_id -> ndarray (n_frames_i, d_model)``.
    """
    import torch

    if layer is None:
        layer = getattr(sae.cfg, "layer", None)
        if layer is None:
            raise ValueError("the SAE records no layer: pass layer=.")
    wanted = set(clips["id"].astype(str))
    keep_acts = set() if isinstance(return_activations, bool) else set(map(str, return_activations))
    arrays, times, acts_out = {}, {}, {}
    with torch.no_grad():
        for cid, t, x in _store_clip_frames(store, layer, members, wanted):
            codes = sae.encode_sparse(torch.as_tensor(np.asarray(x, np.float32)), mode)
            arrays[cid] = _torch_csr_to_scipy(codes)
            times[cid] = t
            if return_activations is True or (
                    not isinstance(return_activations, bool) and cid in keep_acts):
                acts_out[cid] = np.asarray(x, np.float32)
    if not arrays:
        raise ValueError(
            f"none of the {len(wanted)} clips is in the store {store.path}; pass members= "
            "(the pack table) when the store holds packs of clips."
        )
    fids = np.arange(int(sae.cfg.d_sae))
    out = make_clip_codes(arrays, clips, times=times, feature_ids=fids, layer=int(layer),
                          root=root, verbose=False)
    logger.info(f"Encoded {len(arrays)} clips ({out.codes.shape[0]} frames) at layer {layer}")
    return out if return_activations is False else (out, acts_out)


def _torch_csr_to_scipy(t):
    import scipy.sparse as sp

    t = t.to("cpu")
    return sp.csr_array(
        (t.values().numpy().astype(np.float32), t.col_indices().numpy(), t.crow_indices().numpy()),
        shape=tuple(t.shape),
    )
