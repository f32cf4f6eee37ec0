"""Every bad-input case of the package, listed and run in one place.

The cases live in ``tests/bad_input/<area>.py`` (one ``CASES`` list per area:
manifest, audio, EEG, checkpoints, stimuli, statistics, pipeline, ...). Each must
raise its stated exception with a message that names the thing as the user wrote it
(manifest key, file, run id), the allowed values and the fix, and must leave no file
behind. ``python -m pytest tests/test_bad_input.py --collect-only -q`` lists them.
"""

import importlib
import pkgutil
import re

import pytest

import tests.bad_input as _pkg
from tests.bad_input import snapshot


def _all_cases():
    cases = []
    for info in sorted(pkgutil.iter_modules(_pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"tests.bad_input.{info.name}")
        for case in getattr(mod, "CASES", []):
            cases.append(pytest.param(case, id=f"{info.name}-{case.id}"))
    return cases


CASES = _all_cases()


def test_case_ids_unique_and_enough():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate bad-input case ids"
    assert len(ids) >= 30, f"only {len(ids)} bad-input cases listed"


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, tmp_path):
    call, out_dir = case.setup(tmp_path)
    out_dir = tmp_path if out_dir is None else out_dir
    before = snapshot(out_dir)
    with pytest.raises(case.exc) as info:
        call()
    msg = str(info.value)
    for pat in case.match:
        assert re.search(pat, msg, flags=re.IGNORECASE | re.DOTALL), (
            f"{case.id}: message lacks {pat!r}:\n{msg}"
        )
    after = snapshot(out_dir)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    assert not new and not changed, f"{case.id}: left behind {new} / changed {changed}"
