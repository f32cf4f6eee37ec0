"""The system (Debian) files and executables neuro_sae reads, each with the package that owns it.

Every path or program outside Python that the package, its tools or its tests use is
declared here once, with the Debian package that installs it. The Makefile's ``SYSDEPS``
installs exactly these packages (``make sysdeps``), error messages name the package from
this table, and ``tests/test_sysdeps.py`` checks both directions: every ``/usr/...`` path
and ``shutil.which`` name in the source tree is declared here, and every declared entry is
owned (``dpkg -S``) by its declared package, which the Makefile installs.
"""

from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SYSTEM_DEPENDENCIES", "MissingToolError", "SystemDependency", "find_system",
           "missing_packages", "require_system", "system_dependency"]


class MissingToolError(RuntimeError):
    """A Debian program or data file neuro_sae needs is not installed."""


@dataclass(frozen=True)
class SystemDependency:
    """One program or data file outside Python.

    Attributes
    ----------
    name : str
        The key used in the code (``require_system(name)``).
    kind : str
        ``"executable"`` (found on ``PATH``), ``"file"``, ``"dir"`` or ``"glob"`` (a
        pattern that must match at least one file).
    target : tuple of str
        The program names (first found wins) or the path/pattern.
    package : str
        The Debian package that installs it.
    purpose : str
        What neuro_sae uses it for (shown in errors).
    """

    name: str
    kind: str
    target: tuple
    package: str
    purpose: str

    def find(self):
        """The installed path, or None."""
        if self.kind == "executable":
            for exe in self.target:
                path = shutil.which(exe)
                if path:
                    return Path(path)
            return None
        (pattern,) = self.target
        if self.kind == "glob":
            hits = sorted(glob.glob(pattern))
            return Path(hits[0]) if hits else None
        path = Path(pattern)
        ok = path.is_dir() if self.kind == "dir" else path.is_file()
        return path if ok else None

    @property
    def paths(self):
        """The literal paths (or patterns) this entry stands for."""
        return () if self.kind == "executable" else self.target


def _dep(name, kind, target, package, purpose):
    target = (target,) if isinstance(target, str) else tuple(target)
    return SystemDependency(name, kind, target, package, purpose)


SYSTEM_DEPENDENCIES = {d.name: d for d in (
    _dep("espeak-ng", "executable", "espeak-ng", "espeak-ng",
         "speech synthesis of the offline corpus and the demo stimuli"),
    _dep("festival", "executable", "festival", "festival",
         "speech synthesis with phone alignments (offline corpus)"),
    _dep("festvox-kallpc16k", "dir", "/usr/share/festival/voices/english/kal_diphone",
         "festvox-kallpc16k", "festival's 'kal' diphone voice"),
    _dep("festvox-us-slt-hts", "dir", "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts",
         "festvox-us-slt-hts", "festival's 'slt' HTS voice"),
    _dep("fluidsynth", "executable", "fluidsynth", "fluidsynth",
         "rendering MIDI music for the offline corpus"),
    _dep("soundfont-timgm6mb", "file", "/usr/share/sounds/sf2/TimGM6mb.sf2",
         "timgm6mb-soundfont", "General MIDI soundfont for fluidsynth"),
    _dep("soundfont-fluidr3", "file", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
         "fluid-soundfont-gm", "General MIDI soundfont for fluidsynth"),
    _dep("openmsx", "glob", "/usr/share/games/openttd/baseset/openmsx/*.mid",
         "openttd-openmsx", "MIDI music pieces (offline corpus)"),
    _dep("freedesktop", "glob", "/usr/share/sounds/freedesktop/stereo/*.oga",
         "sound-theme-freedesktop", "recorded sound effects and speech (offline corpus)"),
    _dep("oxygen", "glob", "/usr/share/sounds/Oxygen-*.ogg", "oxygen-sounds",
         "recorded sound effects (offline corpus)"),
    _dep("sound-icons", "glob", "/usr/share/sounds/sound-icons/*.wav", "sound-icons",
         "recorded sound effects and instrument notes (offline corpus)"),
    _dep("asterisk", "glob", "/usr/share/asterisk/sounds/en/*.wav",
         "asterisk-core-sounds-en-wav", "recorded English speech prompts (offline corpus)"),
    _dep("asterisk-text", "file", "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz",
         "asterisk-core-sounds-en", "transcripts of the recorded prompts (offline corpus)"),
    _dep("sox", "executable", "sox", "sox",
         "converting audio files libsndfile cannot read (suggested in error messages)"),
    _dep("pgrep", "executable", "pgrep", "procps",
         "the kill-and-resume test finds the executor's worker processes"),
    _dep("chromium", "executable", ("chromium", "chromium-browser"), "chromium",
         "headless browser for the feature dashboard's tests"),
)}


def system_dependency(name):
    """The ``SystemDependency`` record called ``name`` (KeyError listing the names)."""
    try:
        return SYSTEM_DEPENDENCIES[name]
    except KeyError:
        raise KeyError(
            f"No system dependency {name!r}; declared ones: {', '.join(SYSTEM_DEPENDENCIES)}. "
            "Declare new ones in neuro_sae/utils/_sysdeps.py and add the package to the "
            "Makefile's SYSDEPS."
        ) from None


def find_system(name):
    """Installed path of system dependency ``name``, or None."""
    return system_dependency(name).find()


def missing_packages(names):
    """Debian packages (sorted, unique) of the dependencies among ``names`` not installed."""
    return sorted({system_dependency(n).package for n in names if find_system(n) is None})


def require_system(*names):
    """Path of the (first) dependency, or a MissingToolError naming every missing package.

    All the names are checked before raising, so one error lists everything to install.
    """
    missing = [system_dependency(n) for n in names if find_system(n) is None]
    if missing:
        what = "; ".join(f"{d.name} ({d.purpose}) from the Debian package {d.package}"
                         for d in missing)
        pkgs = " ".join(sorted({d.package for d in missing}))
        raise MissingToolError(
            f"Missing system dependencies: {what}. Install with 'sudo apt-get install "
            f"--no-install-recommends {pkgs}' (or 'make sysdeps', which installs every "
            "Debian package neuro_sae uses)."
        )
    return find_system(names[0]) if names else None
