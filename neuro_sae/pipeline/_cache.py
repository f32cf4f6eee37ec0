"""Step caching keyed on input-content hashes plus the step's own config slice.

A step is skipped only when its recorded key (hashes of its inputs, its config
slice and the package version) matches and every recorded output still has the
hash it had when written: editing an output by hand triggers a logged recompute.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..io import hash_config, hash_file, write_json
from ..utils import logger


def _hash_path(path):
    path = Path(path)
    if path.is_dir():
        return hash_config({p.name: hash_file(p) for p in sorted(path.rglob("*")) if p.is_file()})
    return hash_file(path)


class StepCache:
    """Decide whether a step must run, and record it when it has.

    Parameters
    ----------
    cache_dir : str | os.PathLike
        Folder of the step records.
    step : str
        Name of the step (and subject), e.g. ``"04_fit_trf-sub-01"``.
    config : dict
        The step's own configuration slice.
    inputs : list of path-like
        Files or folders the step reads.
    """

    def __init__(self, cache_dir, step, config, inputs=()):
        self.record = Path(cache_dir) / f"{step}.json"
        self.step = step
        self.config = config
        self.inputs = [Path(p) for p in inputs]
        self._key = None

    def key(self):
        """The cache key: config slice, input hashes and package version.

        :meth:`is_done` recomputes it; :meth:`done` reuses the one taken by the
        last :meth:`is_done`, since a step's inputs are read-only to it.
        """
        missing = [str(p) for p in self.inputs if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"Step {self.step} needs {missing}, which do not exist; run the earlier "
                "steps first (neuro-sae demo runs them all)."
            )
        self._key = hash_config(
            dict(
                config=self.config,
                inputs={str(p): _hash_path(p) for p in self.inputs},
                version=__version__,
            )
        )
        return self._key

    def is_done(self):
        """Whether the recorded run is still valid.

        Returns
        -------
        done : bool
            ``True`` when the step can be skipped.
        """
        self._key = self.key()
        if not self.record.is_file():
            return False
        try:
            rec = json.loads(self.record.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        if rec.get("key") != self._key:
            logger.info(f"[{self.step}] inputs or configuration changed: recomputing")
            return False
        for fname, digest in rec.get("outputs", {}).items():
            if not Path(fname).exists() or _hash_path(fname) != digest:
                logger.info(f"[{self.step}] output {fname} is missing or was modified: recomputing")
                return False
        return True

    def done(self, outputs):
        """Record a completed run.

        Parameters
        ----------
        outputs : list of path-like
            The files the step wrote.
        """
        write_json(
            dict(
                step=self.step,
                key=self._key if self._key is not None else self.key(),
                config=self.config,
                outputs={str(p): _hash_path(p) for p in outputs},
            ),
            self.record,
        )
