"""The specification of a model, shared by the frequentist and Bayesian sides: formulas, spatial-lag terms, instruments, identification, inputs, and the coefficient table formats."""
