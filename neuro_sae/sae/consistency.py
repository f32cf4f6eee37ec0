"""Seed (and layer) consistency of SAE features.

Two complementary measures, as in REFERENCE.md section 2:

- the AudioSAE paper's *distributional IoU*: a feature's binary activation
  pattern over frames (codes from per-clip BatchTopK) is compared with every
  feature of another SAE; feature ``a`` is *covered* by SAE B if some ``b`` has
  IoU > theta (many-to-one), and a *duplicate* if another feature of its own
  SAE does;
- the peers' one-to-one Hungarian matching of decoder (or encoder) directions
  by cosine, with the shared fraction at cosine thresholds 0.5 / 0.7 / 0.9.

A random-initialisation baseline gives the chance level of both.

Clips: the paper's BatchTopK at inference keeps ``k * n_frames_i`` activations
*per clip*, so every function that encodes activations takes the clips as a
list of arrays, or one array of consecutive clips with ``lengths=``; one bare
array is refused (it would silently count as a single clip). Padding: the
activations are expected without Whisper's padding frames (the stores and
:func:`neuro_sae.activations` drop them through the padding mask), so a 10 s
clip contributes 500 frames. The paper most likely kept the padded 30 s window
(1,500 frames, ~85 percent padding for a LibriSpeech clip), which changes both
the per-clip budget ``k * n_frames_i`` and the IoU denominators; our counts are
therefore not the paper's to the frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ..utils import check_option, fill_doc, logger, validate_type, verbose

#: Bound on the entries of one block of the intersection matrix (memory).
_BLOCK_ENTRIES = 1 << 24


class Coverage(NamedTuple):
    """IoU coverage of the features of SAE A by those of SAE B."""

    n_covered: int
    """Features of A with IoU > theta to some feature of B."""
    fraction: float
    """``n_covered / n_features`` (the paper reports the count out of d_sae)."""
    n_alive: int
    """Features of A active at least once."""
    n_features: int
    """Number of features of A."""
    best_iou: np.ndarray
    """Shape (n_features,): the largest IoU of each feature of A with B (0 if dead)."""
    best_match: np.ndarray
    """Shape (n_features,): the feature of B reaching it (-1 where best_iou is 0)."""


class Duplicates(NamedTuple):
    """Features of one SAE with IoU > theta to another feature of the same SAE."""

    n_duplicates: int
    """Number of features with a duplicate."""
    fraction: float
    """``n_duplicates / n_features``."""
    duplicate: np.ndarray
    """Shape (n_features,), bool: whether each feature has a duplicate."""
    best_iou: np.ndarray
    """Shape (n_features,): the largest IoU with another feature."""
    best_match: np.ndarray
    """Shape (n_features,): that other feature (-1 where best_iou is 0)."""


class HungarianMatch(NamedTuple):
    """One-to-one matching of the directions of two SAEs by cosine."""

    rows: np.ndarray
    """Shape (n_pairs,): matched features of A."""
    cols: np.ndarray
    """Shape (n_pairs,): their partners in B."""
    cosines: np.ndarray
    """Shape (n_pairs,): cosine of each matched pair."""
    shared: dict
    """Threshold -> fraction of matched pairs with cosine > threshold."""
    mean_cosine: float
    """Mean cosine over matched pairs."""


# ------------------------------------------------------------------ helpers
def _binary(codes, name):
    """Binary activation pattern as a scipy CSC matrix of float64, (n_frames, d)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(codes, torch.Tensor):
        if codes.layout != torch.strided:
            codes = codes.to_dense()
        codes = codes.detach().cpu().numpy()
    if sp.issparse(codes):
        mat = sp.csc_matrix(codes)
        mat.eliminate_zeros()
        mat.data = np.ones_like(mat.data, dtype=np.float64)
        mat = mat.astype(np.float64)
    else:
        arr = np.asarray(codes)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype} instead.")
        mat = sp.csc_matrix((arr != 0).astype(np.float64))
    if mat.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_frames, d_sae), got shape {mat.shape}.")
    return mat


def _check_theta(theta):
    validate_type(theta, "numeric", "theta")
    if not 0 <= theta < 1:
        raise ValueError(f"theta must be in [0, 1), got {theta!r} instead.")
    return float(theta)


def _best_iou(A, B, exclude_diagonal=False, col_best=None):
    """Largest IoU of every column of A with the columns of B, blockwise.

    ``col_best`` (an array of ``B.shape[1]`` zeros) also receives, from the same
    products, the largest IoU of every column of B with the columns of A.
    """
    na = np.asarray(A.sum(axis=0)).ravel()
    nb = np.asarray(B.sum(axis=0)).ravel()
    d_a, d_b = A.shape[1], B.shape[1]
    best = np.zeros(d_a)
    match = np.full(d_a, -1, dtype=np.int64)
    block = max(1, _BLOCK_ENTRIES // max(d_b, 1))
    At = A.T.tocsr()
    Bc = B.tocsc()
    for start in range(0, d_a, block):
        stop = min(start + block, d_a)
        inter = (At[start:stop] @ Bc).tocsr()  # intersection counts
        inter.sum_duplicates()
        counts = np.diff(inter.indptr)
        rows = np.repeat(np.arange(stop - start), counts)
        cols, n_int = inter.indices, inter.data
        iou = n_int / np.maximum(na[rows + start] + nb[cols] - n_int, 1)
        if exclude_diagonal:
            iou[rows + start == cols] = 0.0
        if col_best is not None:
            np.maximum.at(col_best, cols, iou)
        filled = np.flatnonzero(counts)
        if not filled.size:
            continue
        # per row: the largest IoU, ties to the smallest column index (all O(nnz))
        row_best = np.maximum.reduceat(iou, inter.indptr[filled])
        full = np.zeros(stop - start)
        full[filled] = row_best
        cand = np.where((iou == full[rows]) & (iou > 0), cols, d_b)
        row_match = np.minimum.reduceat(cand, inter.indptr[filled])
        ok = row_best > 0
        best[filled[ok] + start] = row_best[ok]
        match[filled[ok] + start] = row_match[ok]
    return best, match, na


# ------------------------------------------------------------------ IoU
@fill_doc
@verbose
def activation_iou_coverage(codes_a, codes_b, *, theta=0.5, verbose=None):
    """Distributional IoU coverage of the features of SAE A by SAE B.

    Each feature's activation pattern is the set of frames where its code is
    non-zero. For features ``a`` of A and ``b`` of B,
    ``IoU = |a & b| / (|a| + |b| - |a & b|)``, computed for all pairs with one
    sparse product ``A^T B`` of the binarised codes. Feature ``a`` is covered
    if ``max_b IoU(a, b) > theta`` (many-to-one: several features of A may be
    covered by the same ``b``). Dead features (never active) are not covered.

    Parameters
    ----------
    codes_a, codes_b : array-like | scipy.sparse matrix | Tensor, shape (n_frames, d_sae)
        Codes of the two SAEs on the same frames (the paper uses per-clip
        BatchTopK codes; see :func:`encode_clips`). ``d_sae`` may differ.
    theta : float
        IoU threshold in [0, 1) (0.5 in the paper).
    %(verbose)s

    Returns
    -------
    coverage : Coverage
        ``n_covered``, ``fraction``, ``n_alive``, ``n_features``, per-feature
        ``best_iou`` and ``best_match``.
    """
    theta = _check_theta(theta)
    A, B = _binary(codes_a, "codes_a"), _binary(codes_b, "codes_b")
    if A.shape[0] != B.shape[0]:
        raise ValueError(
            f"codes_a and codes_b must cover the same frames, got {A.shape[0]} and "
            f"{B.shape[0]} frames. Encode the same clips with both SAEs."
        )
    best, match, na = _best_iou(A, B)
    covered = best > theta
    n = A.shape[1]
    res = Coverage(int(covered.sum()), float(covered.sum() / n), int((na > 0).sum()), n, best, match)
    logger.info(f"IoU coverage: {res.n_covered}/{n} features (theta={theta})")
    return res


@fill_doc
@verbose
def duplicates(codes, *, theta=0.5, verbose=None):
    """Features of one SAE whose activation pattern duplicates another's.

    Parameters
    ----------
    codes : array-like | scipy.sparse matrix | Tensor, shape (n_frames, d_sae)
        Codes of the SAE.
    theta : float
        IoU threshold in [0, 1): a feature is a duplicate if its IoU with
        another feature of the same SAE exceeds it.
    %(verbose)s

    Returns
    -------
    dup : Duplicates
        ``n_duplicates``, ``fraction``, and per feature ``duplicate``,
        ``best_iou``, ``best_match``.
    """
    theta = _check_theta(theta)
    A = _binary(codes, "codes")
    best, match, _ = _best_iou(A, A, exclude_diagonal=True)
    dup = best > theta
    n = A.shape[1]
    return Duplicates(int(dup.sum()), float(dup.sum() / n), dup, best, match)


# ----------------------------------------------------------- directions
def _directions(W, name):
    try:
        import torch

        if isinstance(W, torch.Tensor):
            W = W.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover
        pass
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_features, d_in), got shape {W.shape}.")
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return np.divide(W, norms, out=np.zeros_like(W), where=norms > 0)


def _check_thresholds(thresholds):
    validate_type(thresholds, (tuple, list), "thresholds")
    out = tuple(float(t) for t in thresholds)
    if not all(-1 <= t <= 1 for t in out):
        raise ValueError(f"thresholds must be cosines in [-1, 1], got {thresholds!r}.")
    return out


@fill_doc
@verbose
def hungarian_match(W_a, W_b, *, thresholds=(0.5, 0.7, 0.9), verbose=None):
    """Match the directions of two SAEs one-to-one by cosine (Hungarian algorithm).

    :func:`scipy.optimize.linear_sum_assignment` maximises the summed cosine
    over one-to-one pairs; a pair is *shared* when its cosine exceeds a
    threshold (0.7 in Paulo & Belrose 2025).

    Parameters
    ----------
    W_a, W_b : array-like | Tensor, shape (n_features, d_in)
        Directions, one per row: decoder atoms (``sae.W_dec``) or encoder
        directions (``sae.W_enc.T``). The numbers of features may differ.
    thresholds : tuple of float
        Cosine thresholds for the shared fraction.
    %(verbose)s

    Returns
    -------
    match : HungarianMatch
        ``rows``, ``cols``, ``cosines`` of the ``min(n_a, n_b)`` matched pairs,
        ``shared`` (threshold -> fraction of pairs above it) and
        ``mean_cosine``.
    """
    from scipy.optimize import linear_sum_assignment

    thresholds = _check_thresholds(thresholds)
    A, B = _directions(W_a, "W_a"), _directions(W_b, "W_b")
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"W_a and W_b must have the same width d_in, got {A.shape[1]} and {B.shape[1]}. "
            "Pass directions as rows (n_features, d_in), e.g. sae.W_dec."
        )
    cos = A @ B.T
    rows, cols = linear_sum_assignment(cos, maximize=True)
    c = cos[rows, cols]
    shared = {t: float(np.mean(c > t)) for t in thresholds}
    logger.info(f"Hungarian match: mean cosine {c.mean():.3f}, shared {shared}")
    return HungarianMatch(rows, cols, c, shared, float(c.mean()))


# ------------------------------------------------------------- with SAEs
def _clip_list(clips, lengths=None, name="clips"):
    """The clips as a list of arrays: a list as given, or one array cut by ``lengths``."""
    if isinstance(clips, (list, tuple)):
        if lengths is not None:
            raise ValueError(f"{name} is already a list of clips: pass lengths=None "
                             "(lengths= cuts one array of consecutive clips).")
        return list(clips)
    if lengths is None:
        shape = tuple(getattr(clips, "shape", ()))
        raise ValueError(
            f"{name} is one array of shape {shape}: per-clip BatchTopK needs the clip "
            f"boundaries. Pass a list of clips (one array (n_frames_i, d_in) each) or "
            f"lengths= (frames per clip; lengths=[{shape[0] if shape else 'n_frames'}] if it "
            "really is one clip)."
        )
    lengths = [int(n) for n in lengths]
    n = int(clips.shape[0])
    if any(v < 1 for v in lengths) or sum(lengths) != n:
        raise ValueError(f"lengths must be positive clip lengths summing to the {n} frames "
                         f"of {name}, got a sum of {sum(lengths)} ({lengths[:5]}...).")
    bounds = np.cumsum([0] + lengths)
    return [clips[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@fill_doc
@verbose
def encode_clips(sae, clips, *, lengths=None, mode="batchtopk", verbose=None):
    """Codes of several clips, each encoded on its own (per-clip BatchTopK).

    Parameters
    ----------
    sae : SparseAutoencoder
        The SAE.
    clips : list of array-like | array-like
        Activations: a list of clips, each ``(n_frames_i, d_in)``, or one
        array ``(sum n_frames_i, d_in)`` of consecutive clips with
        ``lengths=``. Padding frames removed (see the module notes).
    lengths : sequence of int | None
        Frames per clip when ``clips`` is one array (``[n_frames]`` for a
        single clip).
    mode : str
        Encode mode (see :meth:`~neuro_sae.sae.SparseAutoencoder.encode`);
        ``"batchtopk"`` keeps ``k * n_frames_i`` activations per clip as in
        the paper.
    %(verbose)s

    Returns
    -------
    codes : scipy.sparse.csr_matrix, shape (sum of n_frames_i, d_sae)
        The codes of all clips, stacked in order.
    """
    import torch

    from ._model import SparseAutoencoder

    validate_type(sae, SparseAutoencoder, "sae")
    out = []
    with torch.no_grad():
        for clip in _clip_list(clips, lengths):
            c = sae.encode_sparse(clip, mode=mode)
            out.append(
                sp.csr_matrix(
                    (
                        c.values().cpu().numpy().astype(np.float32),
                        c.col_indices().cpu().numpy(),
                        c.crow_indices().cpu().numpy(),
                    ),
                    shape=tuple(c.shape),
                )
            )
    return sp.vstack(out, format="csr")


@fill_doc
def random_dictionary(sae, *, random_state=None):
    """A randomly initialised SAE of the same shape as ``sae``: the chance-level dictionary.

    Random unit-norm decoder atoms, the encoder tied to their transpose, a zero
    encoder bias, and the trained SAE's ``b_dec`` (so that only the dictionary is
    random); on ``sae``'s device, in eval mode.

    Parameters
    ----------
    sae : SparseAutoencoder
        The trained SAE.
    %(random_state)s

    Returns
    -------
    random_sae : SparseAutoencoder
    """
    import torch

    from ._model import SparseAutoencoder, make_sae

    validate_type(sae, SparseAutoencoder, "sae")
    rand = make_sae(sae.cfg, random_state=random_state)
    with torch.no_grad():
        rand.b_dec.copy_(sae.b_dec.detach().cpu())
    return rand.to(sae.device).eval()


@fill_doc
@verbose
def random_baseline(
    sae, clips=None, *, lengths=None, thresholds=(0.5, 0.7, 0.9), theta=0.5, mode="batchtopk",
    random_state=None, verbose=None,
):
    """Consistency of an SAE with a randomly initialised SAE of the same shape.

    The random SAE is :func:`random_dictionary`'s (random unit-norm decoder
    atoms, the encoder tied to them, the trained SAE's ``b_dec``). Its statistics are the chance level
    of :func:`hungarian_match` and :func:`activation_iou_coverage`.

    Parameters
    ----------
    sae : SparseAutoencoder
        The trained SAE.
    clips : list of array-like | array-like | None
        Activations of the clips for the IoU coverage (a list of clips, or one
        array with ``lengths=``; ``None``: directions only).
    lengths : sequence of int | None
        Frames per clip when ``clips`` is one array.
    thresholds : tuple of float
        Cosine thresholds of the shared fraction.
    theta : float
        IoU threshold.
    mode : str
        Encode mode for the codes (``"batchtopk"``: per clip, as the paper).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    baseline : dict
        ``"decoder"`` and ``"encoder"``: :class:`HungarianMatch` of the trained
        SAE against the random one; ``"coverage"``: :class:`Coverage` of the
        trained SAE's features by the random SAE's (``None`` without clips).
    """
    rand = random_dictionary(sae, random_state=random_state)
    out = {
        "decoder": hungarian_match(sae.W_dec, rand.W_dec, thresholds=thresholds),
        "encoder": hungarian_match(sae.W_enc.T, rand.W_enc.T, thresholds=thresholds),
        "coverage": None,
    }
    if clips is not None:
        clips = _clip_list(clips, lengths)
        out["coverage"] = activation_iou_coverage(
            encode_clips(sae, clips, mode=mode), encode_clips(rand, clips, mode=mode), theta=theta
        )
    return out


def _is_sae(obj):
    from ._model import SparseAutoencoder

    return isinstance(obj, SparseAutoencoder)


@fill_doc
@verbose
def consistency_table(
    models, clips=None, *, lengths=None, theta=0.5, thresholds=(0.5, 0.7, 0.9),
    mode="batchtopk", baseline=False, random_state=None, verbose=None,
):
    """Seed-consistency statistics per layer, one row per ordered pair of models.

    Parameters
    ----------
    models : dict
        Layer -> list of SAEs (e.g. one per seed), or layer -> list of code
        matrices (n_frames, d_sae) on the same frames (IoU statistics only).
    clips : dict | None
        Layer -> activations of the clips (a list of arrays, each
        (n_frames_i, d_in), or one array with ``lengths[layer]``) to compute
        the IoU statistics of SAEs. ``None``: direction matching only.
    lengths : dict | None
        Layer -> frames per clip, where ``clips[layer]`` is one array.
    theta : float
        IoU threshold (0.5 in the paper).
    thresholds : tuple of float
        Cosine thresholds of the Hungarian shared fraction.
    mode : str
        Encode mode for codes computed from ``clips``.
    baseline : bool
        Add, per model, a row comparing it with a randomly initialised SAE of
        the same shape (``b == "random"``; SAEs only).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        Columns ``layer``, ``a``, ``b`` (model indices), ``n_features``; with
        codes: ``n_alive``, ``iou_covered`` (features of ``a`` covered by
        ``b``), ``iou_coverage`` (fraction), ``duplicates`` (fraction of
        ``a``'s features with a duplicate); with SAEs: ``decoder_shared_<t>``,
        ``encoder_shared_<t>`` and ``decoder_mean_cos``, ``encoder_mean_cos``.
    """
    import pandas as pd

    from ..utils import check_random_state

    validate_type(models, dict, "models")
    validate_type(clips, (dict, None), "clips")
    validate_type(baseline, bool, "baseline")
    check_option("mode", mode, ("batchtopk", "topk", "threshold"))
    thresholds = _check_thresholds(thresholds)
    rng = check_random_state(random_state)
    rows = []
    for layer, items in models.items():
        items = list(items)
        saes = all(_is_sae(m) for m in items)
        if any(_is_sae(m) for m in items) and not saes:
            raise ValueError(f"models[{layer!r}] mixes SAEs and code matrices; pass one kind.")
        codes = None
        if not saes:
            codes = [_binary(c, f"models[{layer!r}][{i}]") for i, c in enumerate(items)]
        elif clips is not None and layer in clips:
            layer_clips = _clip_list(clips[layer], (lengths or {}).get(layer),
                                     f"clips[{layer!r}]")
            codes = [_binary(encode_clips(m, layer_clips, mode=mode), "codes") for m in items]
        dups = [duplicates(c, theta=theta) for c in codes] if codes is not None else None
        match_cache = {}
        for i in range(len(items)):
            for j in range(len(items)):
                if i == j:
                    continue
                row = dict(layer=layer, a=i, b=j)
                if codes is not None:
                    cov = activation_iou_coverage(codes[i], codes[j], theta=theta)
                    row.update(
                        n_features=cov.n_features, n_alive=cov.n_alive,
                        iou_covered=cov.n_covered, iou_coverage=cov.fraction,
                        duplicates=dups[i].fraction,
                    )
                if saes:
                    key = (min(i, j), max(i, j))
                    if key not in match_cache:
                        match_cache[key] = _matches(items[i], items[j], thresholds)
                    row.setdefault("n_features", items[i].cfg.d_sae)
                    row.update(match_cache[key])
                rows.append(row)
            if baseline and saes:
                base = random_baseline(
                    items[i], None if codes is None else layer_clips,
                    thresholds=thresholds, theta=theta, mode=mode, random_state=rng,
                )
                row = dict(layer=layer, a=i, b="random", n_features=items[i].cfg.d_sae)
                if base["coverage"] is not None:
                    cov = base["coverage"]
                    row.update(
                        n_alive=cov.n_alive, iou_covered=cov.n_covered,
                        iou_coverage=cov.fraction, duplicates=dups[i].fraction,
                    )
                for which in ("decoder", "encoder"):
                    row.update(_match_columns(which, base[which]))
                rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["b"] = table["b"].astype(str)
    return table


def _match_columns(which, m):
    cols = {f"{which}_shared_{t:g}": v for t, v in m.shared.items()}
    cols[f"{which}_mean_cos"] = m.mean_cosine
    return cols


def _matches(sae_a, sae_b, thresholds):
    out = _match_columns("decoder", hungarian_match(sae_a.W_dec, sae_b.W_dec, thresholds=thresholds))
    out.update(
        _match_columns(
            "encoder", hungarian_match(sae_a.W_enc.T, sae_b.W_enc.T, thresholds=thresholds)
        )
    )
    return out


@fill_doc
@verbose
def coverage_table(models, clips=None, *, lengths=None, pairs=None, theta=0.5,
                   mode="batchtopk", verbose=None):
    """IoU coverage between any SAEs on the same clips (layer vs layer, model vs model).

    The paper's cross-layer (layer n vs n + 3) and cross-model (Whisper vs
    HuBERT) tables: for each ordered pair ``(a, b)`` the features of ``a``
    whose binary activation pattern over the clips' frames is matched by some
    feature of ``b`` with IoU > ``theta`` (many-to-one; ``iou_coverage`` is
    their count over ``a``'s ``n_features``, as the paper counts out of d_sae). The
    SAEs may differ in width and input; they must see the same clips. When two
    backbones give a clip different frame counts, both are cut to the shorter.

    Parameters
    ----------
    models : dict
        Name -> SAE, or name -> code matrix (n_frames, d_sae) on shared frames.
    clips : dict | None
        Name -> activations of the clips for that SAE (an array or a list of
        arrays (n_frames_i, d_in), the same clips in the same order for every
        name), or one array with ``lengths[name]``. Needed for SAEs.
    lengths : dict | None
        Name -> frames per clip, where ``clips[name]`` is one array.
    pairs : list of tuple | None
        Ordered ``(a, b)`` name pairs (``None``: all ordered pairs).
    theta : float
        IoU threshold (0.5 in the paper).
    mode : str
        Encode mode for codes computed from ``clips`` (per-clip BatchTopK).
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        Columns ``a``, ``b``, ``n_features``, ``n_alive``, ``iou_covered``,
        ``iou_coverage``, ``n_frames``.
    """
    import pandas as pd

    validate_type(models, dict, "models")
    validate_type(clips, (dict, None), "clips")
    check_option("mode", mode, ("batchtopk", "topk", "threshold"))
    theta = _check_theta(theta)
    names = list(models)
    if pairs is None:
        pairs = [(a, b) for a in names for b in names if a != b]
    for a, b in pairs:
        for n in (a, b):
            if n not in models:
                raise ValueError(f"pairs names {n!r}, which is not in models ({names}).")
    per_clip = {}
    for name, m in models.items():
        if _is_sae(m):
            if clips is None or name not in clips:
                raise ValueError(
                    f"models[{name!r}] is an SAE: pass its clips' activations as "
                    f"clips[{name!r}]."
                )
            per_clip[name] = [
                encode_clips(m, [c], mode=mode)
                for c in _clip_list(clips[name], (lengths or {}).get(name), f"clips[{name!r}]")
            ]
        else:
            per_clip[name] = [_binary(m, f"models[{name!r}]")]
    n_clips = {name: len(v) for name, v in per_clip.items()}
    if len(set(n_clips.values())) != 1:
        raise ValueError(f"The models see different numbers of clips {n_clips}; pass the same clips.")
    rows = []
    for a, b in pairs:
        ca, cb = [], []
        for xa, xb in zip(per_clip[a], per_clip[b]):
            n = min(xa.shape[0], xb.shape[0])
            ca.append(sp.csr_matrix(xa)[:n])
            cb.append(sp.csr_matrix(xb)[:n])
        A = _binary(sp.vstack(ca), "codes")
        B = _binary(sp.vstack(cb), "codes")
        cov = activation_iou_coverage(A, B, theta=theta)
        rows.append(dict(a=a, b=b, n_features=cov.n_features, n_alive=cov.n_alive,
                         iou_covered=cov.n_covered, iou_coverage=cov.fraction,
                         n_frames=A.shape[0]))
    return pd.DataFrame(rows)
