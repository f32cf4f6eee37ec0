"""What the offline corpus is made of: packaged recordings, texts, composed MIDI,
synthesised sounds."""

from __future__ import annotations

import functools
import gzip
import re
from importlib import resources
from pathlib import Path

import numpy as np

from ..utils import require_system, system_dependency
from ._synth import SFREQ


def _folder(dep):
    """Folder of a 'glob' system dependency (neuro_sae.utils: path and Debian package)."""
    return Path(system_dependency(dep).target[0]).parent


FREEDESKTOP = _folder("freedesktop")
OXYGEN = _folder("oxygen")
SOUND_ICONS = _folder("sound-icons")
ASTERISK = _folder("asterisk")
ASTERISK_TEXT = Path(system_dependency("asterisk-text").target[0])
OPENMSX = _folder("openmsx")
# every packaged source the corpus draws from (checked before anything is written)
SOURCE_DEPS = ("freedesktop", "oxygen", "sound-icons", "asterisk", "asterisk-text", "openmsx")
INSTRUMENT_ICONS = ("cembalo", "guitar", "piano", "klavichord", "electric-piano", "trumpet",
                    "violoncello", "xylofon", "chord", "cymbaly")
LICENCES = {
    "freedesktop": ("sound-theme-freedesktop (Debian)", "CC-BY-SA-3.0 / GPL-2+"),
    "oxygen": ("oxygen-sounds (Debian)", "LGPL-3.0-or-later"),
    "sound-icons": ("sound-icons (Debian)", "GPL-2+"),
    "asterisk": ("asterisk-core-sounds-en-wav (Debian)", "CC-BY-SA-3.0"),
    "openmsx": ("openttd-openmsx (Debian)", "GPL-2.0"),
    "espeak": ("espeak-ng synthesis of public-domain text", "public domain text; audio CC0"),
    "festival": ("festival synthesis of public-domain text", "public domain text; audio CC0"),
    "composed": ("MIDI composed by neuro_sae, rendered with fluidsynth + TimGM6mb/FluidR3_GM",
                 "CC0 (soundfonts: GPL-2 / MIT)"),
    "synth": ("synthesised by neuro_sae", "CC0"),
}


def texts_dir():
    return Path(str(resources.files("neuro_sae.data") / "corpora" / "texts"))


def text_chunks():
    """Sentences of the packaged public-domain texts, grouped into 1-3 sentence chunks."""
    chunks = []
    for fname in sorted(texts_dir().glob("*.txt")):
        text = " ".join(fname.read_text(encoding="utf-8").split())
        text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
        text = text.replace("\u201d", '"').replace("\u2014", ", ").replace("_", "")
        # brackets become commas: Whisper's normaliser drops bracketed words from the
        # reference, while the synthesiser reads them
        text = re.sub(r"\s*[()\[\]]\s*", ", ", text).replace(", ,", ",")
        sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]
        i = 0
        while i < len(sents):
            k = 1 if len(sents[i].split()) > 18 else 2 if len(sents[i].split()) > 8 else 3
            chunk = " ".join(sents[i : i + k])
            chunks.append((fname.stem, chunk))
            i += k
    return chunks


def packaged_sounds():
    """Real recorded effects in Debian sound packages: list of dicts (path, labels, ...)."""
    return [dict(item, labels=list(item["labels"])) for item in _packaged_sounds()]


@functools.lru_cache(maxsize=1)
def _packaged_sounds():
    # read once per process: the corpus builder looks a clip up in it for every job
    require_system("freedesktop", "oxygen", "sound-icons")
    out = []
    if FREEDESKTOP.is_dir():
        for f in sorted(FREEDESKTOP.glob("*.oga")):
            if f.stem.startswith("audio-channel-"):
                words = f.stem[len("audio-channel-"):].replace("-", " ")
                out.append(dict(path=f, pkg="freedesktop", domain="speech",
                                labels=["speech", "recorded-speech"], transcript=words))
            else:
                out.append(dict(path=f, pkg="freedesktop", domain="sounds",
                                labels=["sound-effect", f.stem]))
    for f in sorted(OXYGEN.glob("Oxygen-*.ogg")):
        out.append(dict(path=f, pkg="oxygen", domain="sounds",
                        labels=["sound-effect", f.stem[len("Oxygen-"):].lower()]))
    if SOUND_ICONS.is_dir():
        for f in sorted(SOUND_ICONS.glob("*.wav")):
            if f.is_symlink():
                continue
            name = re.sub(r"-\d+$", "", f.stem)
            if name in INSTRUMENT_ICONS:
                out.append(dict(path=f, pkg="sound-icons", domain="music",
                                labels=["music", "instrument-note", f"instrument-{name}"]))
            else:
                out.append(dict(path=f, pkg="sound-icons", domain="sounds",
                                labels=["sound-effect", name]))
    return out


def asterisk_prompts():
    """Asterisk's recorded English prompts with their transcripts (non-speech kept apart)."""
    return [dict(item, labels=list(item["labels"])) for item in _asterisk_prompts()]


@functools.lru_cache(maxsize=1)
def _asterisk_prompts():
    # read once per process (the transcripts file is parsed for every prompt job otherwise)
    require_system("asterisk", "asterisk-text")
    out = []
    with gzip.open(ASTERISK_TEXT, "rt", encoding="utf-8", errors="replace") as fid:
        for line in fid:
            if line.startswith(";") or ":" not in line:
                continue
            key, _, text = line.partition(":")
            key, text = key.strip(), text.strip()
            path = ASTERISK / f"{key}.wav"
            if not path.is_file() or not text:
                continue
            bracket = re.fullmatch(r"\[(.*)\]", text)
            if bracket:  # non-speech entries: tones, monkeys
                what = bracket.group(1).lower()
                label = "animal" if "monkey" in what else "tone"
                out.append(dict(path=path, pkg="asterisk", domain="sounds",
                                labels=["sound-effect", label], key=key))
                continue
            text = re.sub(r"\s*\[.*?\]", "", text).strip()
            labels = ["speech", "recorded-speech", "telephone-prompt"]
            m = re.fullmatch(r"letters/([a-z])", key)
            if m:
                letter = m.group(1).upper()
                labels += ["spoken-letter", f"letter-{letter}"]
                if letter in "AEIOU":
                    labels.append(f"vowel-{letter}")
            out.append(dict(path=path, pkg="asterisk", domain="speech", labels=labels,
                            transcript=text, key=key))
    return out


def openmsx_midis():
    require_system("openmsx")
    return sorted(OPENMSX.glob("*.mid"))


# General MIDI programs (0-based) the composer uses, by label
INSTRUMENTS = {
    "piano": 0, "electric-piano": 4, "harpsichord": 6, "vibraphone": 11, "marimba": 12,
    "organ": 19, "nylon-guitar": 24, "steel-guitar": 25, "clean-electric-guitar": 27,
    "overdriven-guitar": 29, "violin": 40, "cello": 42, "strings": 48, "choir": 52,
    "trumpet": 56, "trombone": 57, "french-horn": 60, "alto-sax": 65, "oboe": 68,
    "clarinet": 71, "flute": 73, "pan-flute": 75, "sitar": 104, "steel-drums": 114,
}
STYLES = ("chorale", "arpeggio", "melody", "waltz", "swing", "drum-groove")
GM_FAMILIES = ("piano", "chromatic-percussion", "organ", "guitar", "bass", "strings",
               "ensemble", "brass", "reed", "pipe", "synth-lead", "synth-pad", "synth-effects",
               "ethnic", "percussive", "sound-effects")
_SCALE = (0, 2, 4, 5, 7, 9, 11)
_PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (1, 4, 0, 0), (0, 3, 0, 4))


def midi_families(path):
    """GM instrument families (and ``drums``) played in a MIDI file."""
    import mido

    fams = set()
    for track in mido.MidiFile(str(path)).tracks:
        for msg in track:
            if msg.type == "program_change" and msg.channel != 9:
                fams.add(GM_FAMILIES[msg.program // 8])
            elif msg.type == "note_on" and msg.channel == 9:
                fams.add("drums")
    return sorted(fams)


def compose_midi(fname, *, style, instrument, seconds, rng):
    """Write a MIDI file of about ``seconds`` in ``style`` played by ``instrument``."""
    import mido

    tpb = 480
    tempo_bpm = int(rng.integers(70, 150))
    key = int(rng.integers(0, 12))
    mid = mido.MidiFile(ticks_per_beat=tpb)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)))
    mid.tracks.append(meta)
    beats_per_bar = 3 if style == "waltz" else 4
    n_bars = max(2, int(round(seconds * tempo_bpm / 60 / beats_per_bar)))
    events = []  # (tick, channel, note, velocity, duration_ticks)

    def chord(bar):
        deg = _PROGRESSIONS[prog][bar % 4]
        return [48 + key + _SCALE[(deg + i) % 7] + 12 * ((deg + i) // 7) for i in (0, 2, 4)]

    prog = int(rng.integers(len(_PROGRESSIONS)))
    bar_t = beats_per_bar * tpb
    for bar in range(n_bars):
        t0, c = bar * bar_t, chord(bar)
        if style == "chorale":
            for n in c + [c[0] + 12]:
                events.append((t0, 0, n, 70, bar_t - 20))
            events.append((t0, 1, c[0] - 12, 80, bar_t - 20))
        elif style == "arpeggio":
            pattern = c + [c[0] + 12, c[2], c[1]]
            step = tpb // 2
            for i in range(beats_per_bar * 2):
                events.append((t0 + i * step, 0, pattern[i % len(pattern)], 75, step))
        elif style == "melody":
            note = c[0] + 12
            t = t0
            while t < t0 + bar_t:
                dur = int(rng.choice([tpb // 2, tpb, tpb // 2, tpb * 2]))
                dur = min(dur, t0 + bar_t - t)
                note = int(np.clip(note + rng.choice([-3, -2, -1, 1, 2, 3, 0]), 55, 84))
                events.append((t, 0, note, int(rng.integers(60, 100)), dur))
                t += dur
            events.append((t0, 1, c[0] - 12, 70, bar_t - 20))
        elif style == "waltz":
            events.append((t0, 1, c[0] - 12, 85, tpb - 20))
            for b in (1, 2):
                for n in c:
                    events.append((t0 + b * tpb, 0, n + 12, 60, tpb - 40))
        elif style == "swing":
            for b in range(beats_per_bar):  # walking bass and ride
                events.append((t0 + b * tpb, 1, c[b % 3] - 12, 85, tpb - 10))
                events.append((t0 + b * tpb, 9, 51, 70, tpb // 3))
                if b % 2:
                    events.append((t0 + b * tpb, 9, 42, 60, tpb // 3))
            for n in c:
                events.append((t0 + tpb + tpb * 2 // 3, 0, n + 12, 65, tpb // 2))
        elif style == "drum-groove":
            for i in range(beats_per_bar * 2):
                t = t0 + i * tpb // 2
                events.append((t, 9, 42, 70, tpb // 4))
                if i % 4 == 0:
                    events.append((t, 9, 36, 100, tpb // 4))
                if i % 4 == 2:
                    events.append((t, 9, 38, 95, tpb // 4))
                if rng.random() < 0.2:
                    events.append((t + tpb // 4, 9, 36, 80, tpb // 4))
    track = mido.MidiTrack()
    track.append(mido.Message("program_change", channel=0,
                              program=INSTRUMENTS.get(instrument, 0)))
    track.append(mido.Message("program_change", channel=1, program=32))  # acoustic bass
    msgs = []
    for t, ch, n, v, d in events:
        msgs.append((t, 1, mido.Message("note_on", channel=ch, note=int(n), velocity=int(v))))
        msgs.append((t + d, 0, mido.Message("note_off", channel=ch, note=int(n), velocity=0)))
    msgs.sort(key=lambda m: (m[0], m[1]))
    last = 0
    for t, _, msg in msgs:
        track.append(msg.copy(time=int(t - last)))
        last = t
    mid.tracks.append(track)
    mid.save(str(fname))
    return dict(tempo_bpm=tempo_bpm, key=key)


SYNTH_EVENTS = ("chirp", "click", "beep", "siren-yelp", "knock", "whoosh", "drip")
SYNTH_TEXTURES = ("white-noise", "pink-noise", "brown-noise", "blue-noise", "hum",
                  "siren-wail", "engine", "rain", "click-train", "babble")
SYNTH_LABELS = {
    "white-noise": ["noise", "white-noise"], "pink-noise": ["noise", "pink-noise"],
    "brown-noise": ["noise", "brown-noise"], "blue-noise": ["noise", "blue-noise"],
    "hum": ["hum", "electrical-hum"], "siren-wail": ["siren", "siren-wail"],
    "siren-yelp": ["siren", "siren-yelp"], "engine": ["engine"], "rain": ["rain"],
    "click-train": ["clicks", "ticking"], "babble": ["babble", "crowd", "voice"],
    "chirp": ["chirp"], "click": ["clicks", "click"], "beep": ["beep", "tone"],
    "knock": ["knock"], "whoosh": ["whoosh", "noise"], "drip": ["drip", "water"],
}


def _coloured(n, alpha, rng):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SFREQ)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (alpha / 2), n)


def synth_sound(kind, seconds, rng, *, babble_voices=None):
    """One synthesised sound of ``seconds`` (16 kHz float64, peak about 0.5)."""
    from scipy.signal import butter, chirp, sosfilt

    n = int(round(seconds * SFREQ))
    t = np.arange(n) / SFREQ
    if kind.endswith("-noise"):
        alpha = {"white-noise": 0, "pink-noise": 1, "brown-noise": 2, "blue-noise": -1}[kind]
        x = _coloured(n, alpha, rng)
    elif kind == "hum":
        f0 = float(rng.choice([50.0, 60.0]))
        x = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6))
                for k in range(1, 8)) + 0.02 * rng.standard_normal(n)
    elif kind in ("siren-wail", "siren-yelp"):
        rate = rng.uniform(0.15, 0.4) if kind == "siren-wail" else rng.uniform(2.5, 5)
        lo, hi = rng.uniform(500, 800), rng.uniform(1200, 1700)
        f = lo + (hi - lo) * 0.5 * (1 - np.cos(2 * np.pi * rate * t))
        x = np.sign(np.sin(2 * np.pi * np.cumsum(f) / SFREQ)) * 0.3 + np.sin(
            2 * np.pi * np.cumsum(f) / SFREQ)
    elif kind == "engine":
        f0 = rng.uniform(25, 60) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
        ph = 2 * np.pi * np.cumsum(f0) / SFREQ
        x = sum(np.sin(k * ph) / k for k in range(1, 12)) * (
            1 + 0.3 * np.sin(ph / 2)) + 0.3 * _coloured(n, 2, rng) / 50
    elif kind == "rain":
        x = 0.3 * _coloured(n, 1, rng) / 30
        for _ in range(int(seconds * rng.uniform(20, 80))):
            i = int(rng.integers(0, max(1, n - 400)))
            x[i : i + 400] += rng.uniform(0.1, 0.6) * np.exp(-np.arange(400) / 40) * \
                rng.standard_normal(400)
    elif kind in ("click-train", "click"):
        x = np.zeros(n)
        period = rng.uniform(0.15, 1.0) if kind == "click-train" else seconds
        for start in np.arange(0.05, seconds - 0.01, period):
            i = int(start * SFREQ)
            m = min(200, n - i)
            x[i : i + m] += np.exp(-np.arange(m) / 15) * np.sin(
                2 * np.pi * rng.uniform(1500, 4000) * np.arange(m) / SFREQ)
    elif kind == "chirp":
        x = np.zeros(n)
        for start in np.arange(0.05, seconds - 0.2, rng.uniform(0.2, 0.6)):
            m = int(rng.uniform(0.05, 0.15) * SFREQ)
            i = int(start * SFREQ)
            tt = np.arange(m) / SFREQ
            x[i : i + m] += chirp(tt, rng.uniform(2000, 4000), tt[-1], rng.uniform(4000, 7000),
                                  method=str(rng.choice(["linear", "logarithmic"]))) * \
                np.hanning(m)
    elif kind == "beep":
        x = np.zeros(n)
        f = rng.uniform(400, 2500)
        on, off = rng.uniform(0.08, 0.4), rng.uniform(0.05, 0.3)
        for start in np.arange(0.02, seconds - on, on + off):
            i, m = int(start * SFREQ), int(on * SFREQ)
            x[i : i + m] += np.sin(2 * np.pi * f * np.arange(m) / SFREQ) * np.hanning(m) ** 0.1
    elif kind == "knock":
        x = np.zeros(n)
        for start in np.arange(0.05, seconds - 0.1, rng.uniform(0.15, 0.35)):
            i, m = int(start * SFREQ), min(1600, n - int(start * SFREQ))
            env = np.exp(-np.arange(m) / rng.uniform(100, 300))
            x[i : i + m] += env * (np.sin(2 * np.pi * rng.uniform(120, 300) *
                                          np.arange(m) / SFREQ) + 0.3 * rng.standard_normal(m))
    elif kind == "whoosh":
        sos = butter(2, [300, 3000], btype="bandpass", fs=SFREQ, output="sos")
        x = sosfilt(sos, rng.standard_normal(n)) * np.hanning(n)
    elif kind == "drip":
        x = np.zeros(n)
        for start in np.arange(0.05, seconds - 0.1, rng.uniform(0.3, 0.8)):
            i, m = int(start * SFREQ), min(1200, n - int(start * SFREQ))
            tt = np.arange(m) / SFREQ
            f = rng.uniform(800, 1500) * (1 + 2 * tt / tt[-1])
            x[i : i + m] += np.sin(2 * np.pi * np.cumsum(f) / SFREQ) * np.exp(-tt * 40)
    elif kind == "babble":
        x = np.zeros(n)
        for wave in babble_voices or []:
            off = int(rng.integers(0, max(1, n // 4)))
            seg = wave[: n - off]
            x[off : off + len(seg)] += seg / (np.std(seg) + 1e-9)
    else:
        raise ValueError(f"unknown synthetic sound {kind!r}")
    x = np.asarray(x, dtype=np.float64)
    peak = np.max(np.abs(x))
    return x * (0.5 / peak) if peak > 0 else x
