"""Corpus manifest: which corpora (reader, root, weight) make up a training mixture."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..utils import check_fname, fill_doc, logger, verbose
from ._index import check_clip_index, index_to_clips
from ._readers import READERS

ReaderName = Literal[tuple(READERS)]  # type: ignore[valid-type]


class CorpusEntry(BaseModel):
    """One corpus of the mixture."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="Corpus name (the key of its weight).")
    reader: ReaderName = Field(description="Reader of its folder layout.")
    root: str = Field(min_length=1, description="Its folder (relative to the manifest).")
    weight: float | None = Field(default=None, ge=0,
                                 description="Sampling weight (None: from `weights`).")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Keyword options of the reader.")


class CorpusManifest(BaseModel):
    """A training mixture: corpora and their sampling weights."""

    model_config = ConfigDict(extra="forbid")
    name: str = "corpora"
    weights: str | dict[str, float] | None = Field(
        default=None, description="'paper' (Table 3), a YAML file or a mapping; entries' "
                                  "own weight wins.")
    corpora: list[CorpusEntry] = Field(min_length=1)
    path: str | None = None

    @field_validator("corpora")
    @classmethod
    def _unique(cls, v):
        names = [c.name for c in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"corpus names must be unique, {dup} appear more than once")
        return v

    def root_of(self, entry):
        """Absolute folder of a corpus entry."""
        root = Path(entry.root).expanduser()
        if not root.is_absolute() and self.path:
            root = Path(self.path).parent / root
        return root


def _format_errors(err, source):
    lines = [f"Invalid corpus manifest {source}:"]
    allowed = {"": list(CorpusManifest.model_fields), "corpora": list(CorpusEntry.model_fields)}
    for e in err.errors():
        loc = e["loc"]
        key = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            names = allowed["corpora" if loc[0] == "corpora" else ""]
            names = [n for n in names if n != "path"]
            hint = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
            msg = f"  - unknown key '{key}'." + (f" Did you mean '{hint[0]}'?" if hint else "")
            msg += f" Allowed keys here: {', '.join(names)}."
        elif e["type"] == "literal_error":
            hint = difflib.get_close_matches(str(e.get("input")), list(READERS), n=1)
            msg = (f"  - '{key}': {e.get('input')!r} is not a reader; allowed readers: "
                   f"{', '.join(READERS)}." + (f" Did you mean '{hint[0]}'?" if hint else ""))
        elif e["type"] == "missing":
            msg = f"  - missing required key '{key}'."
        else:
            msg = f"  - '{key}': {e['msg']} (got {e.get('input')!r})."
        lines.append(msg)
    return "\n".join(lines)


@fill_doc
@verbose
def read_corpus_manifest(fname, *, verbose=None):
    """Load and validate a corpus manifest (YAML).

    The file lists ``corpora`` (each with ``name``, ``reader``, ``root`` relative
    to the file, optional ``weight`` and reader ``options``) and optional
    ``weights`` (``paper`` for the paper's Table 3). Example::

        name: paper-mixture
        weights: paper
        corpora:
          - {name: LibriSpeech, reader: librispeech, root: /data/LibriSpeech}
          - {name: FSD50K, reader: fsd50k, root: /data/FSD50K}
          - {name: MUSAN, reader: musan, root: /data/musan}

    Parameters
    ----------
    fname : str | os.PathLike
        The YAML file.
    %(verbose)s

    Returns
    -------
    manifest : CorpusManifest
        The validated manifest.
    """
    import yaml

    fname = check_fname(fname, "corpus manifest",
                        hint="Pass the YAML file listing the corpora (reader, root, weight).")
    try:
        raw = yaml.safe_load(fname.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"Corpus manifest {fname} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"Corpus manifest {fname} must hold a mapping with a 'corpora' list.")
    try:
        return CorpusManifest(**raw, path=str(fname.resolve()))
    except ValidationError as err:
        raise ValueError(_format_errors(err, fname)) from None


def _as_manifest(manifest):
    if isinstance(manifest, CorpusManifest):
        return manifest
    if isinstance(manifest, dict):
        try:
            return CorpusManifest(**manifest)
        except ValidationError as err:
            raise ValueError(_format_errors(err, "(dict)")) from None
    return read_corpus_manifest(manifest)


@fill_doc
@verbose
def corpus_manifest_weights(manifest, *, verbose=None):
    """Sampling weight of each corpus of a manifest.

    Parameters
    ----------
    manifest : CorpusManifest | dict | path-like
        The manifest.
    %(verbose)s

    Returns
    -------
    weights : dict of str to float
        Corpus name -> weight (the entry's ``weight``, else the ``weights`` preset).
    """
    from ..activations import read_corpus_weights

    manifest = _as_manifest(manifest)
    preset = read_corpus_weights(manifest.weights) if manifest.weights is not None else {}
    out = {}
    for c in manifest.corpora:
        if c.weight is not None:
            out[c.name] = float(c.weight)
        elif c.name in preset:
            out[c.name] = preset[c.name]
        else:
            raise ValueError(
                f"corpora[name={c.name!r}]: no weight; give it 'weight:' or name it as in "
                f"the weights preset ({sorted(preset) or 'no preset given'})."
            )
    return out


@fill_doc
@verbose
def build_clip_index(manifest, *, verbose=None):
    """Read every corpus of a manifest into one clip index.

    Parameters
    ----------
    manifest : CorpusManifest | dict | path-like
        The manifest (see :func:`read_corpus_manifest`).
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        All clips; the ``corpus`` column holds the manifest names and a ``root``
        column each corpus's folder.
    """
    import pandas as pd

    manifest = _as_manifest(manifest)
    parts = []
    for c in manifest.corpora:
        root = manifest.root_of(c)
        try:
            df = READERS[c.reader](root, corpus=c.name, **c.options)
        except TypeError as err:
            raise ValueError(f"corpora[name={c.name!r}].options: {err}") from None
        df["root"] = str(Path(df.attrs["root"]))
        parts.append(df)
    index = check_clip_index(pd.concat(parts, ignore_index=True))
    logger.info(f"Corpus manifest {manifest.name!r}: {len(index)} clips in "
                f"{len(parts)} corpora")
    return index


@fill_doc
@verbose
def manifest_clips(manifest, *, verbose=None):
    """Clips and weights of a manifest, ready for the activation loaders.

    Parameters
    ----------
    manifest : CorpusManifest | dict | path-like
        The manifest.
    %(verbose)s

    Returns
    -------
    clips : pandas.DataFrame
        ``clip_id``, ``path``, ``corpus``, ``domain`` (see :func:`index_to_clips`).
    weights : dict of str to float
        Pass as ``corpus_weights`` to
        :func:`neuro_sae.activations.stream_activations` or
        :func:`neuro_sae.activations.iter_store_batches`.
    """
    manifest = _as_manifest(manifest)
    weights = corpus_manifest_weights(manifest)
    return index_to_clips(build_clip_index(manifest)), weights
