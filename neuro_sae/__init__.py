"""neuro_sae: sparse autoencoders on speech models, related to human EEG."""

__version__ = "0.1.0.dev0"

from .utils import set_log_level, use_log_level, verbose  # noqa: E402

__all__ = ["__version__", "set_log_level", "use_log_level", "verbose"]
