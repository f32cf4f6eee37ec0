"""Tiny dataset folders built to each corpus's documented layout (real WAV files,
distinct durations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def wav(path, seconds, sfreq=16000, *, fmt=None):
    """Write a short tone of exactly ``round(seconds * sfreq)`` samples."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sfreq))
    x = 0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / sfreq)
    sf.write(str(path), x, sfreq, format=fmt)
    return path


def librispeech(root):
    d = Path(root) / "train-clean-100" / "84" / "121123"
    wav(d / "84-121123-0000.flac", 1.25, fmt="FLAC")
    wav(d / "84-121123-0001.flac", 0.75, fmt="FLAC")
    (d / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n"
                                           "84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n")
    return root


def libritts(root):
    d = Path(root) / "dev-clean" / "84" / "121123"
    wav(d / "84_121123_000007_000000.wav", 1.5, 24000)
    (d / "84_121123_000007_000000.normalized.txt").write_text("Go, do you hear?")
    wav(d / "84_121123_000008_000001.wav", 0.5, 24000)
    (d / "84_121123_000008_000001.normalized.txt").write_text("But in less than five minutes.")
    return root


def musan(root):
    root = Path(root)
    wav(root / "music" / "fma" / "music-fma-0000.wav", 2.0)
    wav(root / "music" / "fma" / "music-fma-0001.wav", 1.75)
    (root / "music" / "fma" / "ANNOTATIONS").write_text(
        "music-fma-0000 rock,pop Y artist1\nmusic-fma-0001 classical N artist2\n")
    wav(root / "noise" / "free-sound" / "noise-free-sound-0000.wav", 1.1)
    wav(root / "speech" / "librivox" / "speech-librivox-0000.wav", 0.9)
    return root


def fsd50k(root):
    root = Path(root)
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "dev.csv").write_text(
        "fname,labels,mids,split\n"
        '64760,"Electric_guitar,Guitar,Music",/m/02sgy,train\n'
        '16399,"Speech,Human_voice",/m/09x0r,val\n'
    )
    (gt / "eval.csv").write_text(
        "fname,labels,mids\n"
        '37199,"Dog,Animal",/m/0bt9lr\n'
        '21914,"Laughter,Human_voice",/m/01j3sz\n'
    )
    (gt / "vocabulary.csv").write_text("0,Dog,/m/0bt9lr\n1,Speech,/m/09x0r\n")
    wav(root / "FSD50K.dev_audio" / "64760.wav", 0.6, 44100)
    wav(root / "FSD50K.dev_audio" / "16399.wav", 0.7, 44100)
    wav(root / "FSD50K.eval_audio" / "37199.wav", 0.8, 44100)
    wav(root / "FSD50K.eval_audio" / "21914.wav", 0.9, 44100)
    return root


def esc50(root):
    root = Path(root)
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n"
        "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
        "2-100648-A-43.wav,2,43,chirping_birds,False,100648,A\n"
    )
    wav(root / "audio" / "1-100032-A-0.wav", 1.3, 44100)
    wav(root / "audio" / "2-100648-A-43.wav", 0.4, 44100)
    return root


def wham(root):
    root = Path(root)
    wav(root / "tr" / "01aa010b_0.97482_209a010p_-0.97482.wav", 1.2)
    wav(root / "tt" / "22ga010a_1.2_050c0109_-1.2.wav", 0.3)
    return root


def vocalsound(root):
    root = Path(root)
    wav(root / "audio_16k" / "f0003_0_cough.wav", 0.45)
    wav(root / "audio_16k" / "m0011_1_laughter.wav", 1.45)
    return root


def nonspeech7k(root):
    root = Path(root)
    wav(root / "train" / "breath_1.wav", 0.35, 32000)
    wav(root / "test" / "laugh_9.wav", 0.65, 32000)
    (root / "metadata of train set.csv").write_text("Filename,Classname\nbreath_1.wav,Breath\n")
    (root / "metadata of test set.csv").write_text("Filename,Classname\nlaugh_9.wav,Laugh\n")
    return root


def mtg_jamendo(root):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "autotagging.tsv").write_text(
        "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
        "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t1.0\tgenre---punkrock\n"
        "track_0000215\tartist_000014\talbum_000031\t15/215.mp3\t1.5\tgenre---metal\t"
        "instrument---guitar\tmood/theme---energetic\n"
    )
    wav(root / "audio" / "14" / "214.mp3", 1.0, 44100, fmt="MP3")
    wav(root / "audio" / "15" / "215.mp3", 1.5, 44100, fmt="MP3")
    return root


def folder(root):
    root = Path(root)
    wav(root / "a" / "one.wav", 0.55)
    wav(root / "two.flac", 0.85, fmt="FLAC")
    (root / "labels.csv").write_text(
        "path,labels,domain,transcript\n"
        "a/one.wav,whisper;speech,speech,hello there\n"
        "two.flac,siren,sounds,\n"
    )
    return root


LAYOUT_BUILDERS = dict(librispeech=librispeech, libritts=libritts, musan=musan,
                       fsd50k=fsd50k, esc50=esc50, wham=wham, vocalsound=vocalsound,
                       nonspeech7k=nonspeech7k, mtg_jamendo=mtg_jamendo, folder=folder)
