"""Atomic training checkpoints: weights, Adam and training state (safetensors + JSON).

A checkpoint folder ``step-<n>`` holds one sub-folder per model (``cfg.json``,
``sae.safetensors`` and the optimiser/training tensors) and ``trainer.json`` (step,
configuration fingerprint, history). No pickles.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..io import atomic_dir

_KEY = "_"  # batch key of the single model of train_sae
_STATE_NAME = "train_state.safetensors"
_TRAINER_NAME = "trainer.json"


def _record(run, train_config, data_hash, n_done):
    h = run.history
    final = {}
    if h["step"]:
        final = {key: h[key][-1] for key in ("loss", "l0", "explained_variance", "dead_fraction")}
    run.sae.train_info = dict(
        train_config=train_config.to_dict(),
        data_hash=data_hash,
        n_steps_done=int(n_done),
        final_metrics=final,
    )


def _fingerprint(runs, train_config):
    tc = train_config.to_dict()
    for key in ("log_every", "checkpoint_every"):  # may change on resume
        tc.pop(key)
    return dict(
        train_config=tc,
        models={run.name: run.sae.cfg.to_dict() for run in runs},
    )


def _save_checkpoint(folder, runs, step, train_config, data_hashes):
    from safetensors.torch import save_file

    with atomic_dir(folder) as tmp:
        for run in runs:
            sub = tmp / run.name if run.name else tmp
            _record(run, train_config, data_hashes.get(run.key), step)
            run.sae.save(sub, verbose=False)
            save_file(run.state_tensors(), str(sub / _STATE_NAME))
        info = dict(
            step=step,
            fingerprint=_fingerprint(runs, train_config),
            history={run.name or _KEY: run.history for run in runs},
        )
        (tmp / _TRAINER_NAME).write_text(json.dumps(info, indent=1) + "\n")


def _save_snapshot(checkpoint_dir, runs, step, train_config, data_hashes):
    """The models alone (no optimiser state) at ``step``: ``snapshots/step-<n>/<model>``."""
    folder = Path(checkpoint_dir) / "snapshots" / f"step-{step:07d}"
    with atomic_dir(folder) as tmp:
        for run in runs:
            _record(run, train_config, data_hashes.get(run.key), step)
            run.sae.save(tmp / run.name if run.name else tmp, verbose=False)


def _checkpoints(checkpoint_dir):
    return sorted(
        (int(p.name[5:]), p)
        for p in Path(checkpoint_dir).glob("step-*")
        if p.name[5:].isdigit() and (p / _TRAINER_NAME).is_file()
    )


def _prune_checkpoints(checkpoint_dir, keep):
    """Delete all but the ``keep`` latest resumable checkpoints (``None``: keep all)."""
    if keep is None:
        return
    for _, folder in _checkpoints(checkpoint_dir)[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


def _latest_checkpoint(checkpoint_dir):
    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return None
    found = _checkpoints(checkpoint_dir)
    return found[-1][1] if found else None


def _load_checkpoint(folder, runs, train_config):
    from safetensors.torch import load_file

    info = json.loads((folder / _TRAINER_NAME).read_text())
    want = json.loads(json.dumps(_fingerprint(runs, train_config)))
    if info.get("fingerprint") != want:
        raise ValueError(
            f"The checkpoint {folder} was written by a run with other settings "
            f"({info.get('fingerprint')}) than this one ({want}); pass resume=False or a "
            "fresh checkpoint_dir, or resume with the original configurations."
        )
    for run in runs:
        sub = folder / run.name if run.name else folder
        state = load_file(str(sub / "sae.safetensors"), device=str(run.sae.device))
        run.sae.load_state_dict(state, strict=True)
        run.load_state_tensors(load_file(str(sub / _STATE_NAME)))
        run.history = {k: list(v) for k, v in info["history"][run.name or _KEY].items()}
    return int(info["step"])
