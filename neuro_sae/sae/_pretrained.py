"""Pretrained SAEs by name: the AudioSAE releases and SAELens releases, fetched with
huggingface_hub into its cache and read from the cache offline; and this project's
releases installed as data packages (``neuro-sae/whisper-base``, see ``_release.py``),
read from the package, never from the hub.

``load_sae("audiosae/whisper-small", layer=12)`` downloads (once) only the files of that
layer of the release ``Egorgij21/Audio-SAE-Whisper-small`` (``layer_12/ae.pt`` and the
JSON configuration) into huggingface_hub's cache (``HF_HOME`` / ``HF_HUB_CACHE``), then
reads them like a local AudioSAE folder. With ``HF_HUB_OFFLINE=1`` the cache is read and
nothing is downloaded. ``"saelens:<release>"`` with ``sae_id=`` looks the release up in
SAELens's own directory (``sae_lens`` installed) and reads the SAELens folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..utils import logger, verbose


@dataclass(frozen=True)
class PretrainedSAE:
    """One release of pretrained SAEs on the Hugging Face hub.

    Attributes
    ----------
    repo_id : str
        The hub repository.
    backbone : str
        The model whose layers the SAEs read.
    layers : tuple of int
        The layers released (``layer_<n>/`` folders).
    layer_folder : str
        Folder of one layer in the repository (``{layer}`` filled in).
    """

    repo_id: str
    backbone: str
    layers: tuple
    layer_folder: str = "layer_{layer}"


#: The AudioSAE releases (Aparin, Sadekova et al., EACL 2026), one SAE per encoder layer.
PRETRAINED_SAES = {
    "audiosae/hubert-base": PretrainedSAE("Egorgij21/Audio-SAE-HuBERT-base", "facebook/hubert-base-ls960",
                                          tuple(range(1, 13))),
    "audiosae/hubert-large": PretrainedSAE("Egorgij21/Audio-SAE-HuBERT-large", "facebook/hubert-large-ll60k",
                                           tuple(range(1, 25))),
    "audiosae/whisper-small": PretrainedSAE("Egorgij21/Audio-SAE-Whisper-small", "openai/whisper-small",
                                            tuple(range(1, 13))),
    "audiosae/whisper-large-v3": PretrainedSAE("Egorgij21/Audio-SAE-Whisper-large-v3",
                                               "openai/whisper-large-v3", tuple(range(1, 33))),
    "audiosae/whisper-large-v3-turbo": PretrainedSAE("Egorgij21/Audio-SAE-Whisper-large-v3-turbo",
                                                     "openai/whisper-large-v3-turbo", tuple(range(1, 33))),
}  # fmt: skip

_SAELENS = "saelens:"


def is_pretrained_name(name):
    """Whether ``name`` names a pretrained release (``audiosae/...``, ``saelens:...``, or an
    installed data-package release such as ``neuro-sae/whisper-base``) rather than a folder.

    Parameters
    ----------
    name : str | os.PathLike
        A release name or a path.

    Returns
    -------
    bool
    """
    from ._release import is_release_name

    name = str(name)
    return name in PRETRAINED_SAES or name.startswith(_SAELENS) or (
        name.lower().startswith("audiosae/") and not Path(name).exists()
    ) or is_release_name(name)


def register_pretrained_sae(name, repo_id, *, backbone, layers, layer_folder="layer_{layer}"):
    """Add a release of per-layer SAEs (AudioSAE/dictionary_learning layout) by name.

    Parameters
    ----------
    name : str
        The name given to :func:`neuro_sae.sae.load_sae` (e.g. ``"mylab/whisper-base"``).
    repo_id : str
        Its Hugging Face hub repository.
    backbone : str
        The model whose layers the SAEs read.
    layers : sequence of int
        The layers released.
    layer_folder : str
        Folder of one layer in the repository (``{layer}`` filled in).
    """
    PRETRAINED_SAES[str(name)] = PretrainedSAE(str(repo_id), str(backbone), tuple(int(x) for x in layers),
                                               layer_folder)  # fmt: skip


def _offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _fetch(repo_id, patterns, *, name, what, local_hint, cache_dir=None, revision=None):
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=patterns, cache_dir=cache_dir, revision=revision,
                                   local_files_only=_offline())  # fmt: skip
    except Exception as err:  # noqa: BLE001 - every hub/cache failure gets the same advice
        mode = (
            "HF_HUB_OFFLINE=1 is set and the files are not in the huggingface_hub cache"
            if _offline()
            else "the Hugging Face hub could not be reached"
        )
        raise OSError(
            f"Cannot get the pretrained SAE {name!r} ({what} of {repo_id}): {mode} "
            f"({type(err).__name__}). Either fetch it once with network access (unset "
            f"HF_HUB_OFFLINE), or download the folder yourself and pass it instead of the "
            f"name: {local_hint}."
        ) from None
    return Path(folder)


@verbose
def pretrained_sae_folder(name, *, layer=None, sae_id=None, cache_dir=None, revision=None, verbose=None):
    """The local folder of a pretrained SAE, fetched into huggingface_hub's cache if needed.

    Parameters
    ----------
    name : str
        A release of :data:`PRETRAINED_SAES` (``"audiosae/whisper-small"``),
        ``"saelens:<release>"`` (SAELens's directory), or an installed data-package
        release (``"neuro-sae/whisper-base"``, see
        :func:`~neuro_sae.sae.list_sae_releases`), read locally: then the folder is
        ``<release>/layer_<n>`` itself.
    layer : int | None
        The layer (AudioSAE releases).
    sae_id : str | None
        The SAE id within a SAELens release.
    cache_dir : str | os.PathLike | None
        huggingface_hub cache folder (``None``: its default, ``HF_HUB_CACHE``).
    revision : str | None
        Repository revision (``None``: ``main``).
    %(verbose)s

    Returns
    -------
    folder : pathlib.Path
        An AudioSAE release folder holding ``layer_<layer>/ae.pt``, or a SAELens folder.
    """
    from ._release import is_release_name, release_layer_folder

    name = str(name)
    if name.startswith(_SAELENS):
        return _saelens_folder(name, sae_id, cache_dir=cache_dir, revision=revision)
    if name not in PRETRAINED_SAES and is_release_name(name):  # installed data package, offline
        return release_layer_folder(name, layer)
    if name not in PRETRAINED_SAES:
        from ..utils import suggest

        raise ValueError(
            f"Unknown pretrained SAE {name!r}; the releases are {', '.join(PRETRAINED_SAES)} "
            f"and 'saelens:<release>'.{suggest(name, list(PRETRAINED_SAES))} Or pass a local "
            "folder, or add a release with neuro_sae.sae.register_pretrained_sae."
        )
    rel = PRETRAINED_SAES[name]
    if layer is None or int(layer) not in rel.layers:
        raise ValueError(
            f"{name!r} needs layer= one of its released layers {list(rel.layers)}, got {layer!r}."
        )
    sub = rel.layer_folder.format(layer=int(layer))
    folder = _fetch(
        rel.repo_id, [f"{sub}/*", "*.json"], name=name, what=f"layer {layer}", cache_dir=cache_dir,
        revision=revision,
        local_hint=f"load_sae('<folder>', layer={layer}) or, in a manifest, sae.pretrained: "
                   f"{{{layer}: <folder>}} with <folder>/{sub}/ae.pt",
    )  # fmt: skip
    if not (folder / sub / "ae.pt").is_file():
        raise OSError(
            f"The cached snapshot {folder} of {rel.repo_id} has no {sub}/ae.pt; fetch it with "
            "network access (unset HF_HUB_OFFLINE) or pass a local folder."
        )
    logger.info(f"Pretrained SAE {name} layer {layer}: {folder / sub}")
    return folder


def _saelens_folder(name, sae_id, *, cache_dir=None, revision=None):
    release = name[len(_SAELENS):]
    try:
        from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    except ImportError:
        raise ImportError(
            f"{name!r} is read through SAELens's directory of releases: pip install sae-lens, "
            "or pass the SAELens folder itself."
        ) from None
    directory = get_pretrained_saes_directory()
    if release not in directory:
        from ..utils import suggest

        raise ValueError(f"{release!r} is not a SAELens release.{suggest(release, list(directory))}")
    lookup = directory[release]
    if sae_id not in lookup.saes_map:
        ids = list(lookup.saes_map)
        raise ValueError(f"sae_id={sae_id!r} is not in the SAELens release {release!r}; its ids "
                         f"include {ids[:6]}{' ...' if len(ids) > 6 else ''}.")  # fmt: skip
    path = lookup.saes_map[sae_id]
    folder = _fetch(lookup.repo_id, [f"{path}/*"], name=name, what=f"sae_id {sae_id}", cache_dir=cache_dir,
                    revision=revision, local_hint="load_sae('<SAELens folder>')")  # fmt: skip
    return folder / path


@verbose
def load_pretrained_sae(name, *, layer=None, sae_id=None, device="cpu", cache_dir=None, revision=None,
                        verbose=None):  # fmt: skip
    """Load a pretrained SAE by release name (see :func:`pretrained_sae_folder`).

    Parameters
    ----------
    name : str
        ``"audiosae/hubert-base"``, ``"audiosae/whisper-small"``, ...,
        ``"saelens:<release>"``, or an installed data-package release
        (``"neuro-sae/whisper-base"``, read offline from the package).
    layer : int | None
        The layer of an AudioSAE release.
    sae_id : str | None
        The SAE id of a SAELens release.
    device : str
        Torch device.
    cache_dir : str | os.PathLike | None
        huggingface_hub cache folder.
    revision : str | None
        Repository revision.
    %(verbose)s

    Returns
    -------
    sae : SparseAutoencoder
        The model; ``metadata["pretrained"]`` names the release (and layer or id).
    """
    from ._model import load_sae
    from ._release import is_release_name, load_release_sae

    if str(name) not in PRETRAINED_SAES and not str(name).startswith(_SAELENS) and is_release_name(name):
        return load_release_sae(str(name), layer=layer, device=device)
    folder = pretrained_sae_folder(name, layer=layer, sae_id=sae_id, cache_dir=cache_dir, revision=revision)
    if str(name).startswith(_SAELENS):
        sae = load_sae(folder, device=device)
    else:
        sae = load_sae(folder, layer=int(layer), device=device)
    meta = dict(getattr(sae, "metadata", None) or {})
    meta["pretrained"] = dict(name=str(name), layer=layer, sae_id=sae_id)
    sae.metadata = meta
    return sae
