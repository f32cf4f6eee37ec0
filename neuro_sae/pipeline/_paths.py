"""The derivatives layout, BIDS-derivatives style: ``<out>/sub-XX/...`` per subject and
``<out>/stimuli/...`` for what all subjects share.

A study with several backbones (manifest ``backbones``) keeps the first one's outputs in
this layout (the *primary* model, read by the figures and reports) and puts each other
one's beside them, tagged ``model-<tag>``: ``<out>/stimuli/model-<tag>/...``,
``sub-XX_model-<tag>_layer-NN_*`` and ``group_model-<tag>_layer-NN_*``."""

from __future__ import annotations

from pathlib import Path


class StudyPaths:
    """Paths of every output of the pipeline.

    Parameters
    ----------
    root : str | os.PathLike
        The derivatives folder of the study (``--out``).
    model : str | None
        Tag of a backbone other than the primary one (``None``: the primary one).
    """

    def __init__(self, root, model=None):
        self.root = Path(root)
        self.model = model

    def _stim(self):
        base = self.root / "stimuli"
        return base if self.model is None else base / f"model-{self.model}"

    def _tag(self, layer):
        return ("" if self.model is None else f"_model-{self.model}") + f"_layer-{layer:02d}"

    # shared (stimulus-side) outputs
    def activations(self, run_id):
        """Activations of one stimulus run (all layers)."""
        return self._stim() / "activations" / f"{run_id}_activations.npz"

    def sae_dir(self, layer):
        """SAE checkpoint folder of one layer."""
        return self._stim() / "sae" / f"layer-{layer:02d}"

    def features(self, run_id, layer):
        """SAE feature series of one run at one layer."""
        return self._stim() / "features" / f"layer-{layer:02d}" / f"{run_id}_features.npz"

    def alive(self, layer):
        """The selected alive features of one layer (JSON)."""
        return self._stim() / "features" / f"layer-{layer:02d}" / "alive_features.json"

    # per subject
    def subject_dir(self, subject):
        """Folder of one subject."""
        return self.root / f"sub-{subject}"

    def truth(self, subject):
        """Planted truth of a simulated subject."""
        return self.subject_dir(subject) / "eeg" / f"sub-{subject}_truth.json"

    def sweep(self, subject, layer):
        """Univariate TRF sweep result."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}{self._tag(layer)}_sweep.npz"

    def permutation(self, subject, layer):
        """Permutation test result (with its null for the group level)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}{self._tag(layer)}_perm.npz"

    def subject_table(self, subject, layer):
        """Tidy table of the subject's results (parquet)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}{self._tag(layer)}_results.parquet"

    def info(self, subject):
        """Channel info of the aligned EEG (FIF, for plotting)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}_aligned-info.fif"

    # group
    def group_dir(self):
        """Folder of the group-level outputs."""
        return self.root / "group"

    def group_result(self, layer):
        """Group test result."""
        return self.group_dir() / f"group{self._tag(layer)}_perm.npz"

    def group_table(self, layer):
        """Tidy table of the group test (all features x channels)."""
        return self.group_dir() / f"group{self._tag(layer)}_results.parquet"

    def significant_table(self, layer):
        """Table of the significant features at group level."""
        return self.group_dir() / f"group{self._tag(layer)}_significant.parquet"

    def recovery(self):
        """Planted-truth recovery summary."""
        return self.root / "recovery.json"

    def figures_dir(self):
        """Publication figures."""
        return self.root / "figures"

    def cache_dir(self):
        """Step records."""
        return self.root / ".cache"

    # per-subject extras of one model x layer (the paper's protocol)
    def protocol_kernels(self, subject, layer):
        """Kernels fitted on the development runs and on the test runs (paper protocol, npz)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}{self._tag(layer)}_protocol.npz"

    def variance_partition(self, subject, layer):
        """Variance partitioning of the layer's best features against the acoustic envelope."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}{self._tag(layer)}_vp.parquet"

    # across layers and models
    def layers_dir(self):
        """Folder of the across-layer outputs (layer curves, mixed model, paper protocol)."""
        return self.group_dir() / "layers"
