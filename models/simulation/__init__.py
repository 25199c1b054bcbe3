"""Simulation studies: parameter recovery, simulation-based calibration, coverage."""
