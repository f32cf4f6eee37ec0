"""Activation extraction and storage."""

from ._container import Activations, read_activations
from ._extract import extract_activations

__all__ = ["Activations", "extract_activations", "read_activations"]
