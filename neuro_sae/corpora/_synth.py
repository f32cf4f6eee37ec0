"""Packaged audio tools (espeak-ng, festival, fluidsynth): calls, outputs at 16 kHz, TextGrids."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from math import gcd
from pathlib import Path

import numpy as np

from ..utils import MissingToolError, require_system, system_dependency

SFREQ = 16000
FESTIVAL_VOICES = {"kal": "voice_kal_diphone", "slt": "voice_cmu_us_slt_arctic_hts"}
# the Debian package of each festival voice, by voice key (neuro_sae.utils._sysdeps)
FESTIVAL_VOICE_DEPS = {"kal": "festvox-kallpc16k", "slt": "festvox-us-slt-hts"}
# the corpus builder renders each piece with one of these (utils._sysdeps names the package)
SOUNDFONT_DEPS = ("soundfont-timgm6mb", "soundfont-fluidr3")
SOUNDFONTS = tuple(system_dependency(d).target[0] for d in SOUNDFONT_DEPS)

def require(tool):
    """Path of an executable, or a MissingToolError naming its Debian package."""
    return str(require_system(tool))


def tool_versions():
    """Versions of the tools that shape the audio (recorded in corpus.json)."""
    out = {}
    for tool, args in (("espeak-ng", ["--version"]), ("fluidsynth", ["--version"]),
                       ("festival", ["--version"])):
        if shutil.which(tool):
            res = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
            out[tool] = (res.stdout or res.stderr).strip().splitlines()[0] if (
                res.stdout or res.stderr) else "unknown"
    return out


def to_16k(x, sfreq):
    """Mono float64 at 16 kHz (polyphase resampling, zero-phase: no delay)."""
    from scipy.signal import resample_poly

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    sfreq = int(round(sfreq))
    if sfreq != SFREQ:
        g = gcd(sfreq, SFREQ)
        x = resample_poly(x, SFREQ // g, sfreq // g)
    return x


def read_wav_bytes(data):
    import soundfile as sf

    x, sr = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return x, sr


def espeak(text, voice="en-us", *, rate=175, pitch=50, ssml=False):
    """Synthesise ``text`` with espeak-ng; returns 16 kHz mono float64."""
    exe = require("espeak-ng")
    cmd = [exe, "-v", voice, "-s", str(int(rate)), "-p", str(int(pitch)), "--stdout"]
    if ssml:
        cmd.append("-m")
    res = subprocess.run(cmd + [text], capture_output=True, check=False)
    if res.returncode or not res.stdout:
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {res.stderr.decode()[:300]}")
    x, sr = read_wav_bytes(res.stdout)
    return to_16k(x, sr)


def _scheme_string(text):
    return '"' + text.replace("\\", " ").replace('"', "'") + '"'


def festival(text, voice="kal"):
    """Synthesise ``text`` with festival; returns (16 kHz audio, phones, words).

    ``phones`` and ``words`` are lists of ``(label, start_s, end_s)`` from the
    utterance's Segment and Word relations (the times festival synthesised; pauses
    are ``pau``).

    Measured agreement with the waveform: for ``slt`` the first glottal pulse of
    a vowel after silence lies within 10 ms of its segment start (tested); for
    ``kal`` the first phone after the leading pause sounds 15-30 ms after its
    segment start (the diphone voice's first pitch-synchronous unit), and its
    waveform runs 20-30 ms past the last segment; the TextGrid is not shifted.
    """
    if voice not in FESTIVAL_VOICES:
        raise ValueError(f"festival voice must be one of {list(FESTIVAL_VOICES)}, got {voice!r}.")
    exe = str(require_system("festival", FESTIVAL_VOICE_DEPS[voice]))
    with tempfile.TemporaryDirectory(prefix="neuro_sae_fest_") as tmp:
        wav = Path(tmp) / "out.wav"
        script = Path(tmp) / "synth.scm"
        script.write_text(
            f"({FESTIVAL_VOICES[voice]})\n"
            f"(set! u (Utterance Text {_scheme_string(text)}))\n"
            "(utt.synth u)\n"
            f'(utt.save.wave u "{wav}" \'riff)\n'
            "(mapcar (lambda (s) (format t \"S\\t%s\\t%f\\t%f\\n\" (item.name s) "
            "(item.feat s \"segment_start\") (item.feat s \"end\"))) "
            "(utt.relation.items u 'Segment))\n"
            "(mapcar (lambda (w) (format t \"W\\t%s\\t%s\\t%s\\n\" (item.name w) "
            "(item.feat w \"R:SylStructure.daughter1.daughter1.segment_start\") "
            "(item.feat w \"R:SylStructure.daughtern.daughtern.end\"))) "
            "(utt.relation.items u 'Word))\n"
        )
        res = subprocess.run([exe, "--batch", str(script)], capture_output=True, text=True,
                             check=False)
        if res.returncode or not wav.is_file():
            raise MissingToolError(
                f"festival could not synthesise with voice {voice!r} ({res.stderr[:300]}); "
                "install the Debian packages festival, festvox-kallpc16k and "
                "festvox-us-slt-hts (make sysdeps)."
            )
        import soundfile as sf

        x, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    phones, words = [], []
    for line in res.stdout.splitlines():
        f = line.split("\t")
        if len(f) == 4 and f[0] in ("S", "W"):
            try:
                item = (f[1], float(f[2]), float(f[3]))
            except ValueError:  # a word without segments (e.g. punctuation)
                continue
            (phones if f[0] == "S" else words).append(item)
    return to_16k(x, sr), phones, words


def write_textgrid(fname, phones, words, duration):
    """Write word and phone tiers as a Praat TextGrid (praatio), atomically.

    Pauses (``pau``) become empty intervals, as forced aligners write them; the
    last interval is extended to ``duration`` (the audio can run past the last
    segment, e.g. festival's kal voice by 20-30 ms).
    """
    from praatio import textgrid

    from ..io import atomic_path

    def tier(name, items):
        entries, t = [], 0.0
        for label, start, end in items:
            start, end = max(start, t), min(end, duration)
            if label in ("pau", "#", "sil") or end - start <= 1e-6:
                continue
            entries.append((round(start, 6), round(end, 6), label))
            t = end
        return textgrid.IntervalTier(name, entries, 0.0, round(duration, 6))

    tg = textgrid.Textgrid()
    tg.addTier(tier("words", words))
    tg.addTier(tier("phones", phones))
    with atomic_path(fname) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True)


def read_textgrid(fname):
    """Word and phone tiers of a TextGrid as dict tier -> list of (label, start, end)."""
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(fname), includeEmptyIntervals=False)
    return {name: [(e.label, e.start, e.end) for e in tg.getTier(name).entries]
            for name in tg.tierNames}


def render_midi(midi_path, soundfont, *, gain=0.6):
    """Render a MIDI file with fluidsynth; returns 16 kHz mono float64."""
    import soundfile as sf

    exe = require("fluidsynth")
    if not Path(soundfont).is_file():
        owner = [d for d in SOUNDFONT_DEPS if system_dependency(d).target[0] == str(soundfont)]
        if owner:
            require_system(owner[0])  # raises, naming the Debian package of this soundfont
        raise MissingToolError(
            f"soundfont {soundfont} is missing: give the path of an existing .sf2 file, or "
            f"one of the packaged soundfonts {list(SOUNDFONTS)} (make sysdeps installs them)."
        )
    with tempfile.TemporaryDirectory(prefix="neuro_sae_fs_") as tmp:
        out = Path(tmp) / "out.wav"
        res = subprocess.run(
            [exe, "-ni", "-q", "-g", str(gain), "-r", str(SFREQ), "-O", "float", "-T", "wav",
             "-F", str(out), str(soundfont), str(midi_path)],
            capture_output=True, text=True, check=False,
        )
        if res.returncode or not out.is_file():
            raise RuntimeError(f"fluidsynth failed on {midi_path}: {res.stderr[:300]}")
        x, sr = sf.read(str(out), dtype="float64", always_2d=True)
    return to_16k(x, sr)
