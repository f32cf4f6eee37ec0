"""The offline corpus builder: speech, letters, paralinguistic speech, music and sounds
from packaged tools and recordings; deterministic, resumable, content-hashed."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ..utils import check_random_state, fill_doc, logger, progress_bar, require_system, verbose
from . import _sources as src
from . import _synth as syn
from ._index import read_clip_index, write_clip_index

# the system dependencies (neuro_sae.utils.SYSTEM_DEPENDENCIES) build_corpus uses
CORPUS_SYSTEM_DEPS = ("espeak-ng", "festival", *syn.FESTIVAL_VOICE_DEPS.values(), "fluidsynth",
                      *syn.SOUNDFONT_DEPS, *src.SOURCE_DEPS)

BUILDER_VERSION = 1
CORPUS_NAME = "neuro_sae-offline"
SHARES = {"speech": 0.40, "music": 0.30, "sounds": 0.30}
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt4")
# voice-quality variants -> paralinguistic label
PARA_VARIANTS = {"whisper": "whisper", "whisperf": "whisper", "croak": "croak"}
LETTER_VOICES = ("en-us", "en-us+f2", "en-gb+m3", "en-gb-x-rp+f4", "en-gb-scotland+m7",
                 "en-029+f1", "festival:kal", "festival:slt")
LETTER_STYLES = ((150, 40), (180, 60), (215, 80))  # espeak (rate wpm, pitch 0-99)
VOWELS = "AEIOU"


def _voice_name(voice):
    return voice.replace("+", "-")


class _Planner:
    def __init__(self, rng):
        self.rng = rng
        self.jobs = []
        self.counts = {}

    def add(self, kind, domain, est, **params):
        i = self.counts.get(kind, 0)
        self.counts[kind] = i + 1
        self.jobs.append(dict(id=f"{kind}-{i:05d}", kind=kind, domain=domain,
                              est=round(float(est), 3), **params))
        return float(est)


def _est_speech(text, rate=175):
    return 0.6 + len(text.split()) * 60.0 / rate * 1.1


def plan_corpus(hours, random_state=0):
    """The deterministic list of clips (jobs) of a build of ``hours`` hours."""
    rng = check_random_state(random_state)
    total = float(hours) * 3600
    budget = {d: total * s for d, s in SHARES.items()}
    p = _Planner(rng)
    chunks = src.text_chunks()
    full = hours >= 0.5
    # --- speech: spoken letters (the AVLetters stand-in)
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)] if full else list(VOWELS)
    used = 0.0
    for letter in letters:
        for voice in LETTER_VOICES:
            styles = [LETTER_STYLES[1]] if voice.startswith("festival") or not full \
                else LETTER_STYLES
            for rate, pitch in styles:
                used += p.add("letter", "speech", 0.7, letter=letter, voice=voice, rate=rate,
                              pitch=pitch)
    rest = max(budget["speech"] - used, 0.0)
    # real recorded prompts (asterisk): up to 25% of the speech budget
    prompts = [x for x in src.asterisk_prompts() if x["domain"] == "speech"]
    spent = 0.0
    for j in rng.permutation(len(prompts)):
        if spent >= 0.25 * rest:
            break
        spent += p.add("prompt", "speech", 1.0 + 0.4 * len(prompts[j]["transcript"].split()),
                       key=prompts[j]["key"])
    shares = (("festival", 0.30), ("espeak", 0.30), ("paraling", 0.15))
    for kind, share in shares:
        spent, goal = 0.0, share * rest
        while spent < goal:
            text_src, text = chunks[int(rng.integers(len(chunks)))]
            if kind == "festival":
                voice = str(rng.choice(list(syn.FESTIVAL_VOICES)))
                spent += p.add(kind, "speech", _est_speech(text, 165), text=text,
                               text_source=text_src, voice=voice)
            else:
                variants = list(PARA_VARIANTS) if kind == "paraling" else list(ESPEAK_VARIANTS)
                var = str(rng.choice(variants))
                voice = str(rng.choice(ESPEAK_ACCENTS)) + (f"+{var}" if var else "")
                rate = int(rng.integers(130, 186))
                spent += p.add(kind, "speech", _est_speech(text, rate), text=text,
                               text_source=text_src, voice=voice, rate=rate,
                               pitch=int(rng.integers(30, 71)))
    # --- music: packaged instrument notes, openmsx excerpts, composed pieces
    used = 0.0
    notes = [x for x in src.packaged_sounds() if x["domain"] == "music"]
    for x in notes[: max(1, int(len(notes) * min(1.0, hours)))]:
        used += p.add("packaged", "music", 1.5, file=str(x["path"]))
    rest = max(budget["music"] - used, 0.0)
    midis = src.openmsx_midis()
    spent = 0.0
    while midis and spent < 0.4 * rest:
        f = midis[int(rng.integers(len(midis)))]
        sec = float(rng.uniform(12, 30))
        spent += p.add("openmsx", "music", sec, file=str(f), start=float(rng.uniform(0, 0.7)),
                       seconds=round(sec, 2), soundfont=str(rng.choice(syn.SOUNDFONTS)))
    spent = 0.0
    while spent < 0.6 * rest:
        style = str(rng.choice(src.STYLES))
        inst = "drums" if style == "drum-groove" else str(rng.choice(list(src.INSTRUMENTS)))
        sec = float(rng.uniform(8, 25))
        spent += p.add("composed", "music", sec + 2, style=style, instrument=inst,
                       seconds=round(sec, 2), seed=int(rng.integers(2**31)),
                       soundfont=str(rng.choice(syn.SOUNDFONTS)))
    # --- sounds: packaged effects, synthesised events and textures
    used = 0.0
    effects = [x for x in src.packaged_sounds() + src.asterisk_prompts()
               if x["domain"] == "sounds" or (x["domain"] == "speech" and x["pkg"] ==
                                               "freedesktop")]
    keep = effects if full else effects[:: max(1, int(round(1 / max(hours, 1e-3))))]
    for x in keep:
        est = 1.5
        used += 0.0 if x["domain"] == "speech" else est
        p.add("packaged", x["domain"], est, file=str(x["path"]))
    rest = max(budget["sounds"] - used, 0.0)
    spent = 0.0
    while spent < 0.4 * rest:
        kind = str(rng.choice(src.SYNTH_EVENTS))
        sec = float(rng.uniform(0.8, 3.5))
        spent += p.add("event", "sounds", sec, sound=kind, seconds=round(sec, 2),
                       seed=int(rng.integers(2**31)))
    spent = 0.0
    while spent < 0.6 * rest:
        kind = str(rng.choice(src.SYNTH_TEXTURES))
        sec = float(rng.uniform(5, 20))
        extra = {}
        if kind == "babble":
            picks = rng.choice(len(chunks), size=int(rng.integers(4, 8)), replace=False)
            extra = dict(texts=[chunks[int(i)][1] for i in picks],
                         voices=[str(rng.choice(ESPEAK_ACCENTS)) + "+" +
                                 str(rng.choice(ESPEAK_VARIANTS[1:])) for _ in picks])
        spent += p.add("texture", "sounds", sec, sound=kind, seconds=round(sec, 2),
                       seed=int(rng.integers(2**31)), **extra)
    return p.jobs


def _job_hash(job):
    from ..io import hash_config

    return hash_config(dict(job, builder=BUILDER_VERSION))


def _write_wav(fname, x):
    import soundfile as sf

    from ..io import atomic_path

    x = np.asarray(x, dtype=np.float64)
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    with atomic_path(fname) as tmp:
        sf.write(str(tmp), x, syn.SFREQ, subtype="PCM_16", format="WAV")


def _fade(x, ms=20):
    m = min(len(x) // 2, int(ms * syn.SFREQ / 1000))
    if m > 0:
        ramp = np.linspace(0, 1, m)
        x = x.copy()
        x[:m] *= ramp
        x[-m:] *= ramp[::-1]
    return x


def _synthesise(job, out):
    """Audio and index fields of one job (the TextGrid is written here)."""
    kind, lic = job["kind"], src.LICENCES
    rec = dict(speaker=None, transcript=None, alignment=None)
    if kind == "letter":
        L = job["letter"]
        labels = ["speech", "spoken-letter", f"letter-{L}"] + (
            [f"vowel-{L}"] if L in VOWELS else [])
        if job["voice"].startswith("festival:"):
            voice = job["voice"].split(":")[1]
            x, _, _ = syn.festival(f"{L}.", voice)
            rec.update(source=lic["festival"][0] + f" (voice {voice})",
                       licence=lic["festival"][1], speaker=f"festival-{voice}")
        else:
            x = syn.espeak(f'<say-as interpret-as="characters">{L}</say-as>', job["voice"],
                           rate=job["rate"], pitch=job["pitch"], ssml=True)
            rec.update(source=lic["espeak"][0] + f" (voice {job['voice']})",
                       licence=lic["espeak"][1], speaker=f"espeak-{_voice_name(job['voice'])}")
        rec.update(labels=labels + ["tts"], transcript=L)
    elif kind in ("espeak", "paraling"):
        x = syn.espeak(job["text"], job["voice"], rate=job["rate"], pitch=job["pitch"])
        var = job["voice"].partition("+")[2]
        labels = ["speech", "tts", "espeak"]
        if var in PARA_VARIANTS:
            labels += [PARA_VARIANTS[var], "paralinguistic"]
        rec.update(labels=labels, transcript=job["text"],
                   speaker=f"espeak-{_voice_name(job['voice'])}",
                   source=lic["espeak"][0] + f" ({job['text_source']})",
                   licence=lic["espeak"][1])
    elif kind == "festival":
        x, phones, words = syn.festival(job["text"], job["voice"])
        align = f"alignments/{job['id']}.TextGrid"
        syn.write_textgrid(out / align, phones, words, len(x) / syn.SFREQ)
        rec.update(labels=["speech", "tts", "festival"], transcript=job["text"],
                   speaker=f"festival-{job['voice']}", alignment=align,
                   source=lic["festival"][0] + f" ({job['text_source']}, voice {job['voice']})",
                   licence=lic["festival"][1])
    elif kind == "prompt":
        item = next(p for p in src.asterisk_prompts() if p.get("key") == job["key"])
        x = _read_any(item["path"])
        rec.update(labels=item["labels"], transcript=item["transcript"],
                   speaker="asterisk-allison", source=lic["asterisk"][0] + f" ({job['key']})",
                   licence=lic["asterisk"][1])
    elif kind == "packaged":
        item = next(p for p in src.packaged_sounds() + src.asterisk_prompts()
                    if str(p["path"]) == job["file"])
        x = _read_any(item["path"])
        rec.update(labels=item["labels"], transcript=item.get("transcript"),
                   source=lic[item["pkg"]][0] + f" ({Path(job['file']).name})",
                   licence=lic[item["pkg"]][1])
    elif kind == "openmsx":
        full = syn.render_midi(job["file"], job["soundfont"])
        start = int(job["start"] * max(0, len(full) - job["seconds"] * syn.SFREQ))
        x = _fade(full[start : start + int(job["seconds"] * syn.SFREQ)])
        fams = src.midi_families(job["file"])
        rec.update(labels=["music", "midi-arrangement", f"tune-{Path(job['file']).stem}"] +
                   [f"instrument-family-{f}" for f in fams],
                   source=lic["openmsx"][0] + f" ({Path(job['file']).name}, "
                                              f"{Path(job['soundfont']).name})",
                   licence=lic["openmsx"][1])
    elif kind == "composed":
        with tempfile.TemporaryDirectory(prefix="neuro_sae_mid_") as tmp:
            mid = Path(tmp) / "piece.mid"
            src.compose_midi(mid, style=job["style"], instrument=job["instrument"],
                             seconds=job["seconds"], rng=np.random.default_rng(job["seed"]))
            x = syn.render_midi(mid, job["soundfont"])
        labels = ["music", "composed", f"style-{job['style']}", f"instrument-{job['instrument']}"]
        rec.update(labels=labels, source=lic["composed"][0] + f" ({Path(job['soundfont']).name})",
                   licence=lic["composed"][1])
    elif kind in ("event", "texture"):
        rng = np.random.default_rng(job["seed"])
        voices = None
        if job["sound"] == "babble":
            voices = [syn.espeak(t, v) for t, v in zip(job["texts"], job["voices"])]
        x = _fade(src.synth_sound(job["sound"], job["seconds"], rng, babble_voices=voices))
        rec.update(labels=["synthetic"] + src.SYNTH_LABELS[job["sound"]] +
                   (["sound-event"] if kind == "event" else ["texture"]),
                   source=lic["synth"][0] + f" ({job['sound']})", licence=lic["synth"][1])
    else:  # pragma: no cover
        raise ValueError(f"unknown job kind {kind!r}")
    return x, rec


def _read_any(path):
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    return syn.to_16k(x, sr)


def _run_job(job, out):
    """Make one clip: audio, TextGrid, then its record (written last, atomically)."""
    from ..io import hash_file, write_json

    meta = out / "clips" / f"{job['id']}.json"
    h = _job_hash(job)
    wav = out / "audio" / job["domain"] / f"{job['id']}.wav"
    if meta.is_file() and wav.is_file():
        try:
            rec = json.loads(meta.read_text())
            if rec.get("job_hash") == h:
                return rec
        except ValueError:
            pass
    x, rec = _synthesise(job, out)
    if not len(x):
        raise RuntimeError(f"clip {job['id']} came out empty")
    _write_wav(wav, x)
    rec = dict(id=job["id"], corpus=CORPUS_NAME, path=wav.relative_to(out).as_posix(),
               duration=len(x) / syn.SFREQ, sfreq=float(syn.SFREQ), domain=job["domain"],
               **rec, sha256=hash_file(wav), job_hash=h)
    write_json(rec, meta)
    return rec


@fill_doc
@verbose
def build_corpus(out, *, hours=2.0, random_state=0, n_jobs=None, verbose=None):
    """Build the offline labelled corpus from packaged tools and recordings.

    Speech (espeak-ng voices and variants, festival's kal diphone and slt HTS voices
    reading public-domain texts, with word and phone TextGrids for festival; the
    Asterisk prompts, real recorded speech with transcripts), spoken letters
    (the alphabet, or the vowels in builds under 0.5 h, from 8 voices at 3 rates
    and pitches), paralinguistic speech (espeak ``whisper``/``whisperf`` labelled
    ``whisper``, ``croak``), music (fluidsynth renderings of the openttd-openmsx
    MIDI files and of pieces composed here in six styles on 24 instruments) and
    sounds (the Debian sound themes, minus their spoken files, and synthesised
    noises, hum, sirens, engines, rain, clicks, chirps, beeps, knocks, babble).
    About 40, 30 and 30 percent of ``hours`` go to speech, music and sounds.

    Layout of ``out``: ``audio/<domain>/<id>.wav`` (16 kHz mono PCM),
    ``alignments/<id>.TextGrid``, ``clips/<id>.json`` (one record per clip),
    ``index.parquet`` (the clip index, see :mod:`neuro_sae.corpora`) and
    ``corpus.json`` (settings, tool versions, totals).

    The plan (which clips, with which texts, voices and seeds) depends only on
    ``hours`` and ``random_state``; each clip is written atomically, its record
    last, so a killed build resumes where it stopped and gives the same files;
    the same tools give byte-identical audio and index. Nothing is downloaded.

    Parameters
    ----------
    out : str | os.PathLike
        Output folder (created; an earlier build there is resumed).
    hours : float
        Target duration (estimated from text length for speech).
    %(random_state)s
    %(n_jobs)s
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The clip index (also in ``out/index.parquet``).
    """
    import pandas as pd
    from joblib import Parallel, delayed

    from ..io import hash_config, write_json

    if not isinstance(random_state, (int, np.integer)) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an int for a reproducible corpus, got "
                        f"{random_state!r}.")
    hours = float(hours)
    if not 0 < hours <= 1000:
        raise ValueError(f"hours must be in (0, 1000], got {hours}.")
    # every program, voice, soundfont and recording the plan may use, in one error
    require_system(*CORPUS_SYSTEM_DEPS)
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    jobs = plan_corpus(hours, int(random_state))
    logger.info(f"Corpus plan: {len(jobs)} clips, about {sum(j['est'] for j in jobs) / 3600:.2f}"
                f" h, into {out}")
    bar = progress_bar(total=len(jobs), desc="build-corpus", unit="clip")
    records = []
    gen = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
        delayed(_run_job)(job, out) for job in jobs
    )
    for rec in gen:
        records.append(rec)
        bar.update(1)
    bar.close()
    df = pd.DataFrame(records).drop(columns=["job_hash"])
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    write_clip_index(df, out / "index.parquet")
    hours_by = (df.groupby("domain")["duration"].sum() / 3600).round(4).to_dict()
    summary = dict(
        format="neuro_sae.offline_corpus", builder_version=BUILDER_VERSION, hours=hours,
        random_state=int(random_state), plan_hash=hash_config(jobs), n_clips=len(df),
        hours_by_domain=hours_by, total_hours=round(float(df["duration"].sum() / 3600), 4),
        tools=syn.tool_versions(),
    )
    write_json(summary, out / "corpus.json")
    logger.info(f"Built {len(df)} clips ({summary['total_hours']} h: {hours_by}) in "
                f"{time.time() - t0:.1f} s")
    return read_clip_index(out / "index.parquet", verbose="WARNING")
