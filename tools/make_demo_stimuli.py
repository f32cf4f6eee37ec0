"""Regenerate the demo speech stimuli shipped in ``neuro_sae/data/demo_stimuli/``.

The text is the opening of Chapter I of "Alice's Adventures in Wonderland" by Lewis Carroll
(public domain), kept in ``tools/alice_chapter1.txt``. It is split at sentence boundaries into
consecutive runs of about 68 s of speech each, and every run is synthesised once with espeak-ng,
with a different voice and speaking rate per run. The audio is resampled to 16 kHz mono and
written as FLAC (or OGG Vorbis when the FLAC total would exceed 6 MB).

Usage::

    python tools/make_demo_stimuli.py [--out neuro_sae/data/demo_stimuli]

The output is deterministic for a given espeak-ng version (the version is recorded in
``stimuli.tsv``'s companion ``README.md``).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import shutil
import subprocess
import sys
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

HERE = Path(__file__).resolve().parent
TEXT = HERE / "alice_chapter1.txt"
DEFAULT_OUT = HERE.parent / "neuro_sae" / "data" / "demo_stimuli"
SFREQ = 16000
TARGET_S = 68.0
MIN_S, MAX_S = 62.0, 78.0
FLAC_LIMIT_BYTES = 6 * 1024 * 1024
TOTAL_LIMIT_BYTES = 8 * 1024 * 1024

# one voice per run; each run's rate (words per minute) is picked among RATES together with its
# number of sentences, to bring the run closest to TARGET_S (a rate already used costs 3 s)
VOICES = ["en-us", "en-gb+m3", "en-us+f2", "en-gb-x-rp+m7", "en+f4"]
RATES = (150, 155, 160, 165, 170, 175)
REUSE_PENALTY_S = 3.0


def split_sentences(text):
    """Split prose into sentences, never inside a quotation or parentheses."""
    paragraphs = [p.strip().replace("\n", " ") for p in text.split("\n\n") if p.strip()]
    sentences = []
    for para in paragraphs:
        pieces = re.split(r"(?<=[.!?])([\")]*)\s+", para)
        # re.split with a group returns [text, sep, text, sep, ...]
        chunks = [pieces[0]]
        for sep, nxt in zip(pieces[1::2], pieces[2::2]):
            chunks[-1] += sep
            chunks.append(nxt)
        current = ""
        for i, chunk in enumerate(chunks):
            current = f"{current} {chunk}".strip()
            balanced = current.count('"') % 2 == 0 and current.count("(") == current.count(")")
            nxt = chunks[i + 1] if i + 1 < len(chunks) else "A"
            starts = nxt[0].isupper() or nxt[0] == "\"" or nxt[:2] == "(" + nxt[1:2].upper()
            if balanced and starts:
                sentences.append(current)
                current = ""
        if current:
            sentences.append(current)
    return sentences


def synthesise(text, voice, rate):
    """Synthesise ``text`` with espeak-ng; return float64 mono audio at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "text.txt"
        wav = Path(tmp) / "out.wav"
        txt.write_text(text + "\n", encoding="utf-8")
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate), "-f", str(txt), "-w", str(wav)],
            check=True,
            capture_output=True,
        )
        audio, sfreq = sf.read(wav, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    g = gcd(int(sfreq), SFREQ)
    audio = scipy.signal.resample_poly(audio, SFREQ // g, int(sfreq) // g)
    peak = np.max(np.abs(audio))
    return 0.9 * audio / peak


def build_runs(sentences):
    """Assign consecutive sentences to runs, each lasting as close to TARGET_S as possible.

    Each run keeps its voice; its rate is picked among its allowed rates (words per minute) together
    with the number of sentences, so that long sentences do not push a run far from the target.
    """
    runs = []
    used = set()
    pos = 0
    for voice in VOICES:
        best = None
        for n in range(1, len(sentences) - pos + 1):
            text = " ".join(sentences[pos : pos + n])
            durs = []
            for rate in RATES:
                audio = synthesise(text, voice, rate)
                dur = len(audio) / SFREQ
                durs.append(dur)
                cost = abs(dur - TARGET_S) + REUSE_PENALTY_S * (rate in used)
                if MIN_S <= dur <= MAX_S and (best is None or cost < best[0]):
                    best = (cost, n, audio, rate)
            if min(durs) > MAX_S:
                break
        if best is None:
            raise RuntimeError("The text is too short for the requested runs; add prose.")
        _, n, audio, rate = best
        used.add(rate)
        runs.append(dict(voice=voice, rate=rate, sentences=sentences[pos : pos + n], audio=audio))
        pos += n
    return runs


def encode(audio, fmt):
    """Encode 16 kHz audio to bytes (FLAC 16-bit or OGG Vorbis with a fixed stream serial)."""
    buf = io.BytesIO()
    if fmt == "flac":
        sf.write(buf, audio, SFREQ, format="FLAC", subtype="PCM_16")
        return buf.getvalue()
    sf.write(buf, audio, SFREQ, format="OGG", subtype="VORBIS")
    return _fix_ogg_serial(buf.getvalue())


def _ogg_crc(data):
    """CRC-32 of an Ogg page (polynomial 0x04C11DB7, no reflection, zero initial value)."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def _fix_ogg_serial(data, serial=0x4E534145):
    """Replace the random Ogg stream serial number so the bytes are reproducible."""
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos : pos + 4] != b"OggS":
            raise RuntimeError(f"Unexpected Ogg page layout at byte {pos}.")
        n_seg = out[pos + 26]
        size = 27 + n_seg + sum(out[pos + 27 : pos + 27 + n_seg])
        out[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22 : pos + 26] = b"\0\0\0\0"
        out[pos + 22 : pos + 26] = _ogg_crc(out[pos : pos + size]).to_bytes(4, "little")
        pos += size
    return bytes(out)


def espeak_version():
    """The espeak-ng version string."""
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng).")
    sentences = split_sentences(TEXT.read_text(encoding="utf-8"))
    runs = build_runs(sentences)
    encoded = {fmt: [encode(r["audio"], fmt) for r in runs] for fmt in ("flac",)}
    fmt = "flac"
    if sum(map(len, encoded["flac"])) > FLAC_LIMIT_BYTES:
        fmt = "ogg"
        encoded["ogg"] = [encode(r["audio"], "ogg") for r in runs]
    total = sum(map(len, encoded[fmt]))
    if total > TOTAL_LIMIT_BYTES:
        raise RuntimeError(f"Encoded stimuli take {total} bytes, above the 8 MB limit.")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("run*.flac")) + list(out.glob("run*.ogg")):
        old.unlink()
    rows = []
    for i, (run, data) in enumerate(zip(runs, encoded[fmt]), start=1):
        run_id = f"run{i:02d}"
        (out / f"{run_id}.{fmt}").write_bytes(data)
        text = " ".join(run["sentences"])
        (out / f"{run_id}.txt").write_text(text + "\n", encoding="utf-8")
        rows.append(
            dict(
                run_id=run_id,
                file=f"{run_id}.{fmt}",
                duration_s=f"{len(run['audio']) / SFREQ:.4f}",
                voice=run["voice"],
                rate=run["rate"],
                n_words=len(text.split()),
            )
        )
        print(f"{run_id}: {rows[-1]['duration_s']} s, {rows[-1]['n_words']} words, {len(data)} B")
    with open(out / "stimuli.tsv", "w", newline="", encoding="utf-8") as fid:
        writer = csv.DictWriter(fid, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (out / "README.md").write_text(_README.format(version=espeak_version(), fmt=fmt.upper()))
    print(f"Wrote {len(rows)} runs ({total / 1e6:.2f} MB {fmt}) to {out}")


_README = """\
# Demo speech stimuli

Five consecutive runs of synthetic speech (16 kHz mono, {fmt}) reading the opening of
Chapter I, "Down the Rabbit-Hole", of *Alice's Adventures in Wonderland* by Lewis Carroll
(1865). Each run has its transcript (`runXX.txt`); `stimuli.tsv` lists the run id, audio file,
duration in seconds, espeak-ng voice, rate in words per minute and number of words.

## Licence

- Text: public domain (first published 1865). It was typed from memory and may deviate in small
  ways from the original edition.
- Audio: synthesised with espeak-ng ({version}). espeak-ng is GPL-3.0 software, but the speech it
  produces is not covered by the GPL; the audio files are distributed with this package under
  the package's licence (BSD-3-Clause).
- Regenerate with `python tools/make_demo_stimuli.py` (deterministic for a given espeak-ng
  version).
"""


if __name__ == "__main__":
    main()
