"""Fingerprinting: samples → spectrogram → peaks → hashes."""

from soundmark.fingerprint.extract import Fingerprint, fingerprint_samples
from soundmark.fingerprint.params import FingerprintParams

__all__ = ["Fingerprint", "FingerprintParams", "fingerprint_samples"]
