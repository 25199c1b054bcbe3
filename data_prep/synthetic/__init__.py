"""Synthetic data: the embedded demo study with a known truth and the simulators of the recovery studies."""
