"""The derivatives layout, BIDS-derivatives style: ``<out>/sub-XX/...`` per subject and
``<out>/stimuli/...`` for what all subjects share."""

from __future__ import annotations

from pathlib import Path


class StudyPaths:
    """Paths of every output of the pipeline.

    Parameters
    ----------
    root : str | os.PathLike
        The derivatives folder of the study (``--out``).
    """

    def __init__(self, root):
        self.root = Path(root)

    # shared (stimulus-side) outputs
    def activations(self, run_id):
        """Activations of one stimulus run (all layers)."""
        return self.root / "stimuli" / "activations" / f"{run_id}_activations.npz"

    def sae_dir(self, layer):
        """SAE checkpoint folder of one layer."""
        return self.root / "stimuli" / "sae" / f"layer-{layer:02d}"

    def features(self, run_id, layer):
        """SAE feature series of one run at one layer."""
        return self.root / "stimuli" / "features" / f"layer-{layer:02d}" / f"{run_id}_features.npz"

    def alive(self, layer):
        """The selected alive features of one layer (JSON)."""
        return self.root / "stimuli" / "features" / f"layer-{layer:02d}" / "alive_features.json"

    # per subject
    def subject_dir(self, subject):
        """Folder of one subject."""
        return self.root / f"sub-{subject}"

    def truth(self, subject):
        """Planted truth of a simulated subject."""
        return self.subject_dir(subject) / "eeg" / f"sub-{subject}_truth.json"

    def sweep(self, subject, layer):
        """Univariate TRF sweep result."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}_layer-{layer:02d}_sweep.npz"

    def permutation(self, subject, layer):
        """Permutation test result (with its null for the group level)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}_layer-{layer:02d}_perm.npz"

    def subject_table(self, subject, layer):
        """Tidy table of the subject's results (parquet)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}_layer-{layer:02d}_results.parquet"

    def info(self, subject):
        """Channel info of the aligned EEG (FIF, for plotting)."""
        return self.subject_dir(subject) / "trf" / f"sub-{subject}_aligned-info.fif"

    # group
    def group_dir(self):
        """Folder of the group-level outputs."""
        return self.root / "group"

    def group_result(self, layer):
        """Group test result."""
        return self.group_dir() / f"group_layer-{layer:02d}_perm.npz"

    def group_table(self, layer):
        """Tidy table of the group test (all features x channels)."""
        return self.group_dir() / f"group_layer-{layer:02d}_results.parquet"

    def significant_table(self, layer):
        """Table of the significant features at group level."""
        return self.group_dir() / f"group_layer-{layer:02d}_significant.parquet"

    def recovery(self):
        """Planted-truth recovery summary."""
        return self.root / "recovery.json"

    def figures_dir(self):
        """Publication figures."""
        return self.root / "figures"

    def cache_dir(self):
        """Step records."""
        return self.root / ".cache"
