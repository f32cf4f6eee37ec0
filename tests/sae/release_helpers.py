"""Helpers of the release tests: tiny SAEs and a release registered through a fake entry point."""

import importlib.metadata
import sys
import uuid

import numpy as np
import torch

GROUP = "neuro_sae.sae_releases"


def tiny_sae(layer, *, d_in=16, d_sae=48, k=4, backbone="tiny-bb", seed=0):
    """A tiny BatchTopK SAE with non-zero biases, a learned threshold and a training record."""
    from neuro_sae.sae import SAEConfig, make_sae

    sae = make_sae(SAEConfig(d_in=d_in, d_sae=d_sae, k=k, backbone=backbone, layer=layer, seed=seed))
    gen = torch.Generator().manual_seed(100 + layer)
    with torch.no_grad():
        sae.b_enc.copy_(0.05 * torch.randn(d_sae, generator=gen))
        sae.b_dec.copy_(0.3 * torch.randn(d_in, generator=gen))
        sae.threshold.fill_(0.08)
    sae.train_info = dict(n_steps_done=30 + layer, train_config=dict(batch_size=64, lr=1e-3))
    return sae


def install_fake_release(monkeypatch, root, saes, *, name="neuro-sae/tiny-test", backbone="tiny-bb",
                         records=None):
    """Write ``saes`` as a release inside an importable package under ``root`` and make the
    entry-point group :data:`GROUP` list it (``importlib.metadata.entry_points`` patched).

    Returns the release folder (the package's ``RELEASE``).
    """
    from neuro_sae.sae import write_sae_release

    module = f"fake_release_{uuid.uuid4().hex[:8]}"
    pkg = root / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pathlib import Path\n\nRELEASE = Path(__file__).parent\n")
    write_sae_release(saes, pkg, name=name, backbone=backbone, records=records, verbose=False)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)
    real = importlib.metadata.entry_points
    ep = importlib.metadata.EntryPoint(name=name, value=f"{module}:RELEASE", group=GROUP)

    def entry_points(**kwargs):
        if kwargs.get("group") == GROUP:
            return [ep]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return pkg


def frames(n, d_in=16, seed=0):
    """Random frames with a non-zero mean, shape (n, d_in)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d_in)) + 0.5).astype(np.float32)
