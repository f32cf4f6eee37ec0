"""Readers: the documented folder layout of each of the paper's corpora -> a clip index."""

from __future__ import annotations

import csv
from pathlib import Path

from ..utils import check_fname, fill_doc, logger, verbose
from ._index import DOMAINS, check_clip_index

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")

# FSD50K labels (its vocabulary.csv names) of the AudioSet "Human voice" subtree plus the
# human-group sounds made of voices; a clip with none of them is "speech-free", the
# subset the paper uses to measure false speech detections.
FSD50K_VOICE_LABELS = (
    "Human_voice", "Speech", "Male_speech_and_man_speaking",
    "Female_speech_and_woman_speaking", "Child_speech_and_kid_speaking", "Conversation",
    "Speech_synthesizer", "Shout", "Yell", "Screaming", "Whispering", "Laughter", "Giggle",
    "Chuckle_and_chortle", "Crying_and_sobbing", "Sigh", "Singing", "Male_singing",
    "Female_singing", "Chatter", "Crowd", "Cheering",
)

LAYOUTS = {
    "librispeech": "<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac with "
                   "<speaker>-<chapter>.trans.txt ('<utt id> <TEXT>' per line) beside them",
    "libritts": "<root>/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<...>.wav with "
                "<same name>.normalized.txt beside each wav",
    "musan": "<root>/{music,speech,noise}/<source>/*.wav (music/<source>/ANNOTATIONS: "
             "'<utt> <genres> <vocals Y|N> ...' per line)",
    "fsd50k": "<root>/FSD50K.ground_truth/{dev,eval}.csv (fname,labels,mids[,split]) and "
              "<root>/FSD50K.{dev,eval}_audio/<fname>.wav",
    "esc50": "<root>/meta/esc50.csv (filename,fold,target,category,esc10,src_file,take) "
             "and <root>/audio/<filename>",
    "wham": "<root>/{tr,cv,tt}/*.wav (the wham_noise folder; metadata/noise_meta_*.csv "
            "optional)",
    "vocalsound": "<root>/audio_16k/<speaker>_<n>_<label>.wav (label: laughter, sigh, cough, "
                  "throatclearing, sneeze, sniff)",
    "nonspeech7k": "<root>/{train,test}/*.wav with <root>/metadata of {train,test} set.csv "
                   "(columns Filename, Classname)",
    "mtg_jamendo": "<root>/autotagging*.tsv (TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS, "
                   "tab-separated) and the audio under <root>/<PATH> or <root>/audio/<PATH>",
    "folder": "<root>/<csv> with columns path (or filename) and labels ('a;b'), optional "
              "domain, speaker, transcript, alignment, source, licence; paths relative to "
              "<root>",
}


class CorpusLayoutError(ValueError):
    """A folder does not have the documented layout of the dataset it was read as."""


def _layout_error(reader, root, what):
    raise CorpusLayoutError(
        f"{root} is not a {reader} folder: {what}. Expected layout: {LAYOUTS[reader]}. "
        f"Point the corpus root at the dataset's top folder (or pick another reader)."
    )


def _check_root(root, reader):
    return check_fname(root, "root", kind="directory",
                       hint=f"Expected a {reader} folder: {LAYOUTS[reader]}")


def _info(path):
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises several types
        raise ValueError(f"Could not read the audio header of {path} ({err}).") from err
    if info.frames <= 0:
        raise ValueError(f"Audio file {path} holds no samples.")
    return info.frames / info.samplerate, float(info.samplerate)


def _row(root, path, *, corpus, domain, labels, source, licence, speaker=None,
         transcript=None, alignment=None, clip_id=None, duration=None, sfreq=None):
    path = Path(path)
    if duration is None or sfreq is None:
        d, s = _info(path)
        duration = d if duration is None else duration
        sfreq = s if sfreq is None else sfreq
    rel = path.relative_to(root).as_posix()
    return dict(
        id=clip_id or f"{corpus}/{rel.rsplit('.', 1)[0]}", corpus=corpus, path=rel,
        duration=float(duration), sfreq=float(sfreq), domain=domain, labels=list(labels),
        speaker=speaker, transcript=transcript, alignment=alignment, source=source,
        licence=licence, sha256=None,
    )


def _finish(rows, root, reader):
    import pandas as pd

    if not rows:
        _layout_error(reader, root, "no audio clip found")
    df = check_clip_index(pd.DataFrame(rows), where=f" ({reader} reader, {root})")
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    df.attrs["root"] = str(Path(root).resolve())
    logger.info(f"{reader}: {len(df)} clips, {df['duration'].sum() / 3600:.3f} h from {root}")
    return df


def _read_csv(fname, reader, root, required):
    with open(fname, newline="", encoding="utf-8") as fid:
        rows = list(csv.DictReader(fid))
    cols = set(rows[0]) if rows else set()
    lower = {c.strip().lower(): c for c in cols}
    missing = [c for c in required if c.lower() not in lower]
    if missing or not rows:
        _layout_error(reader, root, f"{fname} lacks the column(s) {missing or required} "
                                    f"(it has {sorted(cols)})")
    return [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in rows]


@fill_doc
@verbose
def read_librispeech(root, *, corpus="LibriSpeech", verbose=None):
    """Clip index of a LibriSpeech folder (speech, transcripts, speaker ids).

    Parameters
    ----------
    root : str | os.PathLike
        The ``LibriSpeech`` folder (holding subsets such as ``train-clean-100``) or one
        subset folder.
    corpus : str
        Value of the ``corpus`` column (the name weights are keyed by).
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (paths relative to ``root``).
    """
    root = _check_root(root, "librispeech")
    trans = sorted(root.rglob("*.trans.txt"))
    if not trans:
        _layout_error("librispeech", root, "no <speaker>-<chapter>.trans.txt file under it")
    rows = []
    for tfile in trans:
        for n, line in enumerate(tfile.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            audio = tfile.parent / f"{utt}.flac"
            if not audio.is_file():
                _layout_error("librispeech", root, f"{tfile} line {n} names {utt!r} but "
                                                   f"{audio} does not exist")
            rows.append(_row(root, audio, corpus=corpus, domain="speech",
                             labels=["speech", "read-speech"], speaker=utt.split("-")[0],
                             transcript=text.strip(), clip_id=f"{corpus}/{utt}",
                             source="LibriSpeech ASR corpus (openslr.org/12)",
                             licence="CC-BY-4.0"))
    return _finish(rows, root, "librispeech")


@fill_doc
@verbose
def read_libritts(root, *, corpus="LibriTTS", verbose=None):
    """Clip index of a LibriTTS (or LibriTTS-R) folder.

    Parameters
    ----------
    root : str | os.PathLike
        The ``LibriTTS`` folder or one subset folder.
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index.
    """
    root = _check_root(root, "libritts")
    texts = sorted(root.rglob("*.normalized.txt"))
    if not texts:
        _layout_error("libritts", root, "no <utterance>.normalized.txt file under it")
    rows = []
    for tfile in texts:
        stem = tfile.name[: -len(".normalized.txt")]
        audio = tfile.with_name(f"{stem}.wav")
        if not audio.is_file():
            _layout_error("libritts", root, f"{tfile} has no audio file {audio}")
        rows.append(_row(root, audio, corpus=corpus, domain="speech",
                         labels=["speech", "read-speech"], speaker=stem.split("_")[0],
                         transcript=tfile.read_text(encoding="utf-8").strip(),
                         clip_id=f"{corpus}/{stem}", source="LibriTTS (openslr.org/60)",
                         licence="CC-BY-4.0"))
    return _finish(rows, root, "libritts")


@fill_doc
@verbose
def read_musan(root, *, corpus="MUSAN", verbose=None):
    """Clip index of MUSAN (music, speech and noise; music genres and vocals).

    Parameters
    ----------
    root : str | os.PathLike
        The ``musan`` folder.
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index; ``music`` clips are labelled ``music``, their genres and
        ``vocals`` when sung, ``noise`` clips ``noise`` (domain ``sounds``).
    """
    root = _check_root(root, "musan")
    parts = [p for p in ("music", "speech", "noise") if (root / p).is_dir()]
    if not parts:
        _layout_error("musan", root, "none of the folders music/, speech/, noise/ exists")
    rows = []
    for part in parts:
        for src in sorted(p for p in (root / part).iterdir() if p.is_dir()):
            notes = {}
            ann = src / "ANNOTATIONS"
            if ann.is_file():
                for line in ann.read_text(encoding="utf-8").splitlines():
                    tok = line.split()
                    if tok:
                        notes[tok[0]] = tok[1:]
            for audio in sorted(src.glob("*.wav")):
                note = notes.get(audio.stem, [])
                if part == "music":
                    labels = ["music"] + [g for g in (note[0].split(",") if note else []) if g]
                    if len(note) > 1 and note[1].upper() == "Y":
                        labels.append("vocals")
                    domain = "music"
                elif part == "speech":
                    labels, domain = ["speech"], "speech"
                else:
                    labels, domain = ["noise"], "sounds"
                rows.append(_row(root, audio, corpus=corpus, domain=domain, labels=labels,
                                 source=f"MUSAN ({part}/{src.name})",
                                 licence="see MUSAN LICENSE (CC BY 4.0 / public domain)"))
    return _finish(rows, root, "musan")


@fill_doc
@verbose
def read_fsd50k(root, *, splits=("dev", "eval"), speech_free=False, corpus="FSD50K",
                verbose=None):
    """Clip index of FSD50K from its ground-truth CSVs.

    Parameters
    ----------
    root : str | os.PathLike
        The folder holding ``FSD50K.ground_truth`` and ``FSD50K.{dev,eval}_audio``.
    splits : tuple of str
        Among ``"dev"`` and ``"eval"``.
    speech_free : bool
        Keep only clips without any human-voice label (:data:`FSD50K_VOICE_LABELS`):
        the subset the paper uses for steering.
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (domain ``sounds``; labels as in the vocabulary, plus the
        dev ``split`` as ``split-train`` / ``split-val``).
    """
    root = _check_root(root, "fsd50k")
    gt = root / "FSD50K.ground_truth"
    if not gt.is_dir():
        _layout_error("fsd50k", root, "the folder FSD50K.ground_truth/ is missing")
    voice = set(FSD50K_VOICE_LABELS)
    rows = []
    for split in splits:
        if split not in ("dev", "eval"):
            raise ValueError(f"splits must hold 'dev' and/or 'eval', got {split!r}.")
        fname = gt / f"{split}.csv"
        if not fname.is_file():
            _layout_error("fsd50k", root, f"{fname} is missing")
        for r in _read_csv(fname, "fsd50k", root, ["fname", "labels"]):
            labels = [x.strip() for x in r["labels"].split(",") if x.strip()]
            if speech_free and voice.intersection(labels):
                continue
            if r.get("split"):
                labels.append(f"split-{r['split']}")
            audio = root / f"FSD50K.{split}_audio" / f"{r['fname']}.wav"
            if not audio.is_file():
                _layout_error("fsd50k", root, f"{fname} lists {r['fname']!r} but {audio} "
                                              "does not exist")
            rows.append(_row(root, audio, corpus=corpus, domain="sounds", labels=labels,
                             clip_id=f"{corpus}/{split}/{r['fname']}",
                             source="FSD50K (Fonseca et al. 2022, Freesound)",
                             licence="CC (per clip: FSD50K.metadata/*_clips_info_FSD50K.json)"))
    return _finish(rows, root, "fsd50k")


@fill_doc
@verbose
def read_esc50(root, *, corpus="ESC-50", verbose=None):
    """Clip index of ESC-50 (``meta/esc50.csv``).

    Parameters
    ----------
    root : str | os.PathLike
        The ``ESC-50`` folder (holding ``meta/`` and ``audio/``).
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (domain ``sounds``; labels: the category and ``fold-N``).
    """
    root = _check_root(root, "esc50")
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        _layout_error("esc50", root, f"{meta} is missing")
    rows = []
    for r in _read_csv(meta, "esc50", root, ["filename", "fold", "category"]):
        audio = root / "audio" / r["filename"]
        if not audio.is_file():
            _layout_error("esc50", root, f"{meta} lists {r['filename']!r} but {audio} does "
                                         "not exist")
        rows.append(_row(root, audio, corpus=corpus, domain="sounds",
                         labels=[r["category"], f"fold-{r['fold']}"],
                         source="ESC-50 (Piczak 2015, Freesound)",
                         licence="CC-BY-NC-3.0 (see ESC-50 LICENSE)"))
    return _finish(rows, root, "esc50")


@fill_doc
@verbose
def read_wham(root, *, corpus="WHAM", verbose=None):
    """Clip index of the WHAM! noise set (``wham_noise``).

    Parameters
    ----------
    root : str | os.PathLike
        The ``wham_noise`` folder.
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (domain ``sounds``; labels ``noise``, ``ambience`` and the split).
    """
    root = _check_root(root, "wham")
    splits = [s for s in ("tr", "cv", "tt") if (root / s).is_dir()]
    if not splits:
        _layout_error("wham", root, "none of the folders tr/, cv/, tt/ exists")
    rows = []
    for split in splits:
        for audio in sorted((root / split).glob("*.wav")):
            rows.append(_row(root, audio, corpus=corpus, domain="sounds",
                             labels=["noise", "ambience", f"split-{split}"],
                             source="WHAM! noise (wham.whisper.ai)", licence="CC-BY-NC-4.0"))
    return _finish(rows, root, "wham")


VOCALSOUND_LABELS = ("laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff")


@fill_doc
@verbose
def read_vocalsound(root, *, corpus="VocalSound", verbose=None):
    """Clip index of VocalSound (labels and speakers from the file names).

    Parameters
    ----------
    root : str | os.PathLike
        The release folder holding ``audio_16k/`` (or ``audio_44k/``).
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (domain ``sounds``; labels the vocal sound and ``paralinguistic``).
    """
    root = _check_root(root, "vocalsound")
    folders = [root / d for d in ("audio_16k", "audio_44k") if (root / d).is_dir()]
    if not folders:
        _layout_error("vocalsound", root, "no audio_16k/ (or audio_44k/) folder")
    rows = []
    for audio in sorted(folders[0].glob("*.wav")):
        parts = audio.stem.split("_")
        if len(parts) < 3 or parts[-1] not in VOCALSOUND_LABELS:
            _layout_error("vocalsound", root, f"{audio.name} is not named "
                                              f"<speaker>_<n>_<label> with a label in "
                                              f"{list(VOCALSOUND_LABELS)}")
        rows.append(_row(root, audio, corpus=corpus, domain="sounds",
                         labels=[parts[-1], "paralinguistic"], speaker=parts[0],
                         source="VocalSound (Gong et al. 2022)", licence="CC-BY-SA-4.0"))
    return _finish(rows, root, "vocalsound")


@fill_doc
@verbose
def read_nonspeech7k(root, *, corpus="Nonspeech7k", verbose=None):
    """Clip index of Nonspeech7k (train/test folders and their metadata CSVs).

    Parameters
    ----------
    root : str | os.PathLike
        The dataset folder.
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (domain ``sounds``; labels the class and ``paralinguistic``).
    """
    root = _check_root(root, "nonspeech7k")
    rows = []
    for split in ("train", "test"):
        metas = sorted(root.glob(f"*metadata*{split}*.csv"))
        if not (root / split).is_dir() and not metas:
            continue
        if not metas:
            _layout_error("nonspeech7k", root, f"{root / split} has no 'metadata of {split} "
                                               "set.csv' beside it")
        for r in _read_csv(metas[0], "nonspeech7k", root, ["filename", "classname"]):
            audio = root / split / r["filename"]
            if not audio.is_file():
                _layout_error("nonspeech7k", root, f"{metas[0]} lists {r['filename']!r} but "
                                                   f"{audio} does not exist")
            rows.append(_row(root, audio, corpus=corpus, domain="sounds",
                             labels=[r["classname"].lower(), "paralinguistic"],
                             source="Nonspeech7k (Rashid et al. 2023, zenodo 6967442)",
                             licence="CC-BY-4.0"))
    return _finish(rows, root, "nonspeech7k")


@fill_doc
@verbose
def read_mtg_jamendo(root, *, tsv=None, corpus="MTG-Jamendo", verbose=None):
    """Clip index of MTG-Jamendo from an ``autotagging*.tsv`` file.

    Parameters
    ----------
    root : str | os.PathLike
        The folder holding the TSV (and the audio, or ``audio/``).
    tsv : str | None
        TSV file name (``None``: ``autotagging.tsv`` if present, else the first
        ``autotagging*.tsv``).
    corpus : str
        Value of the ``corpus`` column.
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (domain ``music``; labels ``music`` and the tags as
        ``genre---rock`` etc.); durations from the TSV.
    """
    root = _check_root(root, "mtg_jamendo")
    if tsv is None:
        cands = sorted(root.glob("autotagging*.tsv"))
        if not cands:
            _layout_error("mtg_jamendo", root, "no autotagging*.tsv file")
        tsv = next((c for c in cands if c.name == "autotagging.tsv"), cands[0])
    else:
        tsv = root / tsv
        if not tsv.is_file():
            _layout_error("mtg_jamendo", root, f"{tsv} is missing")
    lines = tsv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    need = ["TRACK_ID", "PATH", "DURATION", "TAGS"]
    if header[: len(need) + 2][:1] != ["TRACK_ID"] or not set(need) <= set(header):
        _layout_error("mtg_jamendo", root, f"{tsv} does not start with the header "
                                           "TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS")
    i_path, i_dur, i_tags = header.index("PATH"), header.index("DURATION"), header.index("TAGS")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        f = line.split("\t")
        rel = f[i_path]
        cands = [root / rel, root / "audio" / rel,
                 root / "audio" / rel.replace(".mp3", ".low.mp3")]
        audio = next((c for c in cands if c.is_file()), None)
        if audio is None:
            _layout_error("mtg_jamendo", root, f"{tsv} line {n} names {rel!r}, found neither "
                                               f"at {cands[0]} nor {cands[1]}")
        _, sfreq = _info(audio)
        rows.append(_row(root, audio, corpus=corpus, domain="music",
                         labels=["music"] + [t for t in f[i_tags:] if t],
                         clip_id=f"{corpus}/{f[0]}", duration=float(f[i_dur]), sfreq=sfreq,
                         source="MTG-Jamendo (Bogdanov et al. 2019)",
                         licence="Creative Commons (per track, see MTG-Jamendo)"))
    return _finish(rows, root, "mtg_jamendo")


@fill_doc
@verbose
def read_audio_folder(root, *, csv_file="labels.csv", domain=None, corpus=None,
                      source=None, licence="unknown", verbose=None):
    """Clip index of any folder of audio files with a CSV of labels.

    Parameters
    ----------
    root : str | os.PathLike
        The folder.
    csv_file : str
        CSV inside ``root`` with a ``path`` (or ``filename``) column relative to
        ``root`` and a ``labels`` column (labels separated by ``;``); optional
        columns ``domain``, ``speaker``, ``transcript``, ``alignment``, ``source``,
        ``licence``, ``id``.
    domain : str | None
        Domain of clips whose row has none (``speech``, ``music`` or ``sounds``).
    corpus : str | None
        Value of the ``corpus`` column (``None``: the folder name).
    source, licence : str | None
        Defaults for rows without them (``source`` ``None``: the folder name).
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index.
    """
    root = _check_root(root, "folder")
    corpus = corpus or root.name
    fname = root / csv_file
    if not fname.is_file():
        _layout_error("folder", root, f"the label file {fname} is missing")
    with open(fname, newline="", encoding="utf-8") as fid:
        table = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()}
                 for r in csv.DictReader(fid)]
    if not table or not ({"path", "filename"} & set(table[0])) or "labels" not in table[0]:
        _layout_error("folder", root, f"{fname} needs a 'path' (or 'filename') and a "
                                      f"'labels' column (it has {sorted(table[0]) if table else []})")
    rows = []
    for n, r in enumerate(table, 2):
        rel = r.get("path") or r.get("filename")
        dom = r.get("domain") or domain
        if dom not in DOMAINS:
            raise ValueError(
                f"{fname} line {n}: domain {dom!r} is not one of {list(DOMAINS)}; add a "
                "'domain' column or pass domain='speech'|'music'|'sounds'."
            )
        audio = root / rel
        if not audio.is_file():
            _layout_error("folder", root, f"{fname} line {n} names {rel!r} but {audio} does "
                                          "not exist")
        rows.append(_row(root, audio, corpus=corpus, domain=dom,
                         labels=[x.strip() for x in r["labels"].split(";") if x.strip()],
                         speaker=r.get("speaker") or None, transcript=r.get("transcript") or None,
                         alignment=r.get("alignment") or None,
                         clip_id=f"{corpus}/{r['id']}" if r.get("id") else None,
                         source=r.get("source") or source or root.name,
                         licence=r.get("licence") or licence))
    return _finish(rows, root, "folder")


READERS = {
    "librispeech": read_librispeech,
    "libritts": read_libritts,
    "musan": read_musan,
    "fsd50k": read_fsd50k,
    "esc50": read_esc50,
    "wham": read_wham,
    "vocalsound": read_vocalsound,
    "nonspeech7k": read_nonspeech7k,
    "mtg_jamendo": read_mtg_jamendo,
    "folder": read_audio_folder,
}
