"""Bayesian side: PyMC models of the system, sampling, impacts, LOO and diagnostics."""

import warnings

# PyTensor warns on every run that it found no BLAS to link its C code against. The models here
# are sampled by nutpie through numba, which calls its own BLAS, so the notice concerns only
# PyTensor's small helper functions; nothing in this project can act on it. Filtered by its
# exact text so that every other PyTensor warning still shows.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation",
                        category=UserWarning)
