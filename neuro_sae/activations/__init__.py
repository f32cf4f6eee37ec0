"""Activation extraction and storage."""

from ._container import Activations, read_activations

__all__ = ["Activations", "read_activations"]
