"""The spectrum of W: exact eigenvalues, quadrature for large n, the extreme eigenvalues, the admissible region of the spatial parameters, and the one chooser."""
