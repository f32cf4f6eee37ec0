"""The Debian packages the code reads are the ones the Makefile installs.

Three checks hold the code, the declared table (``neuro_sae.utils.SYSTEM_DEPENDENCIES``)
and the Makefile's ``SYSDEPS`` to each other:

1. every ``/usr/...`` path literal, ``shutil.which`` name and subprocess program in the
   source tree (package, tests, tools, analyses, figures, benchmarks) is declared;
2. the declared packages are exactly the Makefile's ``SYSDEPS``;
3. every declared file or program is owned (``dpkg -S``) by its declared package.

So a new system dependency cannot be added without its install step. Under ``CI=true``
an uninstalled entry fails (the install step is broken); locally it skips.
"""

import ast
import dataclasses
import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from neuro_sae.utils import (
    SYSTEM_DEPENDENCIES,
    MissingToolError,
    find_system,
    require_system,
)
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("neuro_sae", "tests", "tools", "analyses", "figures", "benchmarks")
SYSTEM_PREFIXES = ("/usr/", "/etc/", "/opt/", "/bin/", "/sbin/", "/lib/", "/var/")
# programs of the base system every Debian image has (Essential: yes), used by this file
ESSENTIAL = {"dpkg", "dpkg-query"}


def makefile_sysdeps():
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    m = re.search(r"^SYSDEPS\s*:?=(.*)$", text, flags=re.M)
    assert m, "the Makefile has no SYSDEPS variable"
    return m.group(1).split()


def _literal_uses(tree):
    """(kind, value, line) of system paths, which() names and subprocess programs."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(SYSTEM_PREFIXES):
                yield "path", node.value, node.lineno
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = ast.unparse(node.func)
        first = node.args[0]
        if func.endswith("which") and isinstance(first, ast.Constant):
            yield "executable", first.value, node.lineno
        if func.startswith("subprocess.") and isinstance(first, (ast.List, ast.Tuple)):
            if first.elts and isinstance(first.elts[0], ast.Constant):
                prog = first.elts[0].value
                if isinstance(prog, str) and "/" not in prog:
                    yield "executable", prog, node.lineno


def _declared_executables():
    return {exe for d in SYSTEM_DEPENDENCIES.values() if d.kind == "executable"
            for exe in d.target}


def _path_declared(path):
    """A literal path is declared when it is (or matches, or contains) a declared path."""
    for dep in SYSTEM_DEPENDENCIES.values():
        for target in dep.paths:
            if path == target or fnmatch.fnmatch(path, target):
                return True
            if target.startswith(path.rstrip("/") + "/"):  # a folder of a declared file
                return True
    return False


def test_source_tree_declares_every_system_dependency():
    """Every system path or program named in the source is in SYSTEM_DEPENDENCIES."""
    exes = _declared_executables() | ESSENTIAL
    undeclared = []
    for top in SCANNED:
        for fname in sorted((ROOT / top).rglob("*.py")):
            if fname.name in ("_sysdeps.py", "test_sysdeps.py"):  # the table; this test
                continue
            tree = ast.parse(fname.read_text(encoding="utf-8"), filename=str(fname))
            for kind, value, line in _literal_uses(tree):
                ok = value in exes if kind == "executable" else _path_declared(value)
                if not ok:
                    undeclared.append(f"{fname.relative_to(ROOT)}:{line}: {kind} {value!r}")
    assert not undeclared, (
        "System programs/files used but not declared in neuro_sae/utils/_sysdeps.py (declare "
        "each with its Debian package and add the package to the Makefile's SYSDEPS):\n"
        + "\n".join(undeclared)
    )


def test_scanner_sees_paths_programs_and_which():
    """The scan catches each form of use (so the test above can fail)."""
    code = ('import shutil, subprocess\nX = "/usr/share/foo/bar.sf2"\nshutil.which("lame")\n'
            'subprocess.run(["ffmpeg", "-i", "x"])\n')
    found = {(k, v) for k, v, _ in _literal_uses(ast.parse(code))}
    assert found == {("path", "/usr/share/foo/bar.sf2"), ("executable", "lame"),
                     ("executable", "ffmpeg")}
    assert not _path_declared("/usr/share/foo/bar.sf2")
    assert _path_declared("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert _path_declared("/usr/share/sounds/sound-icons/piano-1.wav")  # matches a glob


def test_makefile_installs_exactly_the_declared_packages():
    declared = {d.package for d in SYSTEM_DEPENDENCIES.values()}
    sysdeps = makefile_sysdeps()
    assert len(sysdeps) == len(set(sysdeps)), f"SYSDEPS lists a package twice: {sysdeps}"
    assert declared - set(sysdeps) == set(), (
        f"declared in neuro_sae/utils/_sysdeps.py but not installed by 'make sysdeps': "
        f"{sorted(declared - set(sysdeps))}")
    assert set(sysdeps) - declared == set(), (
        f"installed by 'make sysdeps' but used by nothing declared: "
        f"{sorted(set(sysdeps) - declared)}")


def _dpkg_owners(path):
    """Packages dpkg says own ``path`` (trying the /usr form on merged-/usr systems)."""
    path = Path(path)
    candidates = [path, path.resolve()]
    if path.parts[:2] in (("/", "bin"), ("/", "sbin"), ("/", "lib")):
        candidates.append(Path("/usr", *path.parts[1:]))
    for cand in candidates:
        res = subprocess.run(["dpkg", "-S", str(cand)], capture_output=True, text=True,
                             check=False)
        if res.returncode == 0:
            owners = set()
            for line in res.stdout.splitlines():
                pkgs, _, _ = line.partition(": ")
                owners |= {p.strip().split(":")[0] for p in pkgs.split(",")}
            return owners
    return set()


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="not a Debian system (no dpkg)")
@pytest.mark.parametrize("name", sorted(SYSTEM_DEPENDENCIES))
def test_declared_dependency_is_owned_by_its_package(name):
    dep = SYSTEM_DEPENDENCIES[name]
    path = find_system(name)
    if path is None:
        msg = (f"{name} ({' | '.join(dep.target)}) is not installed: Debian package "
               f"{dep.package}, which 'make sysdeps' installs")
        if IN_CI:
            pytest.fail(f"CI=true: {msg}", pytrace=False)
        pytest.skip(msg)
    owners = _dpkg_owners(path)
    assert dep.package in owners, (
        f"{name}: {path} is owned by {sorted(owners) or 'no package'}, not by the declared "
        f"{dep.package!r}; fix the package in neuro_sae/utils/_sysdeps.py and the Makefile")
    assert dep.package in makefile_sysdeps()


def test_missing_dependency_error_names_the_package(monkeypatch, tmp_path):
    """A missing soundfont names fluid-soundfont-gm (not the other soundfont's package)."""
    dep = SYSTEM_DEPENDENCIES["soundfont-fluidr3"]
    gone = dataclasses.replace(dep, target=(str(tmp_path / "FluidR3_GM.sf2"),))
    monkeypatch.setitem(SYSTEM_DEPENDENCIES, "soundfont-fluidr3", gone)
    gone_exe = dataclasses.replace(SYSTEM_DEPENDENCIES["sox"], target=("no-such-sox-xyz",))
    monkeypatch.setitem(SYSTEM_DEPENDENCIES, "sox", gone_exe)
    with pytest.raises(MissingToolError, match="fluid-soundfont-gm") as err:
        require_system("soundfont-fluidr3", "sox")
    msg = str(err.value)
    assert "timgm6mb" not in msg
    assert "apt-get install --no-install-recommends fluid-soundfont-gm sox" in msg
    assert "make sysdeps" in msg
    with pytest.raises(KeyError, match="Declare new ones"):
        require_system("not-a-dependency")


def test_render_midi_names_the_soundfont_package(monkeypatch, tmp_path):
    """render_midi with a missing packaged soundfont names that soundfont's package."""
    from neuro_sae.corpora import _synth

    fluid = dataclasses.replace(SYSTEM_DEPENDENCIES["fluidsynth"], target=("sh",))
    monkeypatch.setitem(SYSTEM_DEPENDENCIES, "fluidsynth", fluid)  # any program on PATH
    gone = dataclasses.replace(SYSTEM_DEPENDENCIES["soundfont-fluidr3"],
                               target=(str(tmp_path / "FluidR3_GM.sf2"),))
    monkeypatch.setitem(SYSTEM_DEPENDENCIES, "soundfont-fluidr3", gone)
    with pytest.raises(MissingToolError, match="fluid-soundfont-gm"):
        _synth.render_midi(tmp_path / "x.mid", gone.target[0])
    with pytest.raises(MissingToolError, match="give the path of an existing .sf2"):
        _synth.render_midi(tmp_path / "x.mid", tmp_path / "mine.sf2")


def test_study_stops_before_any_step_when_a_package_is_missing(monkeypatch, tmp_path):
    """The demo's steer step builds a corpus with fluidsynth: a study without it stops at
    once, naming the package, before extraction or training ran."""
    from neuro_sae.manifest import load_manifest
    from neuro_sae.pipeline.demo import default_manifest, run_study

    gone = dataclasses.replace(SYSTEM_DEPENDENCIES["fluidsynth"], target=("no-fluidsynth-xyz",))
    monkeypatch.setitem(SYSTEM_DEPENDENCIES, "fluidsynth", gone)
    manifest = load_manifest(default_manifest(), verbose="WARNING")
    out = tmp_path / "derivatives"
    with pytest.raises(MissingToolError, match=r"Debian package fluidsynth"):
        run_study(manifest, out, verbose="WARNING")
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written == [], f"files written before the check: {written[:5]}"


def test_corpus_builder_checks_everything_before_writing(monkeypatch, tmp_path):
    from neuro_sae.corpora import build_corpus

    for name in ("openmsx", "oxygen"):
        dep = SYSTEM_DEPENDENCIES[name]
        monkeypatch.setitem(SYSTEM_DEPENDENCIES, name,
                            dataclasses.replace(dep, target=(str(tmp_path / "none" / "*.x"),)))
    with pytest.raises(MissingToolError, match="oxygen-sounds") as err:
        build_corpus(tmp_path / "c", hours=0.01, verbose="WARNING")
    assert "openttd-openmsx" in str(err.value)  # every missing package in one error
    assert not (tmp_path / "c").exists()


def test_missing_package_skips_locally_and_fails_in_ci(monkeypatch):
    """Item 3 of the fresh-machine issue: under CI=true a test whose Debian package is
    missing fails (naming the package) instead of skipping."""
    import tests.conftest as conf

    gone = dataclasses.replace(SYSTEM_DEPENDENCIES["chromium"], target=("no-chromium-xyz",))
    monkeypatch.setitem(SYSTEM_DEPENDENCIES, "chromium", gone)
    monkeypatch.setattr(conf, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="missing Debian package.*chromium"):
        conf.require_system_or_skip("chromium")
    monkeypatch.setattr(conf, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true.*chromium"):
        conf.require_system_or_skip("chromium", "sox")
    conf.require_system_or_skip("sox")  # installed: neither
