"""Layout of the InferenceData of the Bayesian models: what a user reads, and what the sampler used.

:func:`tidy_posterior` puts every produced InferenceData (spatial system, panel system,
quadratic, censored factor model; :func:`models.bayes.sampling.sample` calls it once after
sampling) into this layout, so ``az.summary(idata)`` shows only reported quantities and has no
NaN row:

``posterior``
    What the models report, on the original scale of the data: ``coef`` (below), ``Sigma``
    (equation, equation2), ``rho`` (``error_equation``: only the equations with a spatial
    error), ``nu`` (Student-t degrees of freedom), the impacts ``impact`` (added later by
    :func:`models.bayes.postprocess.add_effects_and_loo`), the quadratic model's
    ``turning_point``, ``slope_ends`` and shape indicators, and the censored model's ``phi``,
    ``phi_group``, ``xi``, ``sigma`` and ``Intercept``.
``unconstrained_posterior`` (:data:`INTERNAL_GROUP`, a group of the ArviZ schema)
    The sampling-scale variables, kept so nothing is lost: the free variables on the
    standardised scale (``structural_std``, ``beta_std``, ``sd_std``, ``chol_std`` …, the
    censored model's ``alpha_std``, ``phi_std``, ``sigma_std`` …), their transformed values as
    nutpie stores them (``sd_std_log__``, ``corr_u_logodds__``, ``rho_error_interval__`` …) and
    the auxiliary variables behind a reported one (``corr_u``, ``rho_error``, the non-centred
    innovations ``group_z`` and ``city_z``). :func:`is_internal` is the rule.

``coef`` (choice). The model computes the coefficients as a full equation × term grid, NaN where
an equation lacks a term, and ArviZ reports every such cell as a NaN row. A zero-filled grid with
a boolean mask would still give rows, with sd 0 and R-hat NaN, for coefficients that do not
exist. So the posterior holds ``coef`` stacked over the present pairs only: one dimension
``coefficient`` labelled ``"ER: W(PSS)"`` (the labels of the model's ``structural`` and
``exogenous`` coordinates), with the coordinates ``coef_equation`` and ``coef_term`` giving each
entry's equation and term (``equation`` itself cannot be reused: it is the dimension of
``Sigma``, and stays in the posterior as the list of equations). Order: the grid's, row by row,
so the entries of one equation are contiguous, in the model's term order (the union of the
equations' terms, first equation first). Readers that need the grid (effects, LOO, predictive)
take :func:`coef_grid`, which accepts either layout (files written before this layout too);
``rho`` likewise has only the equations with a spatial error, and :func:`rho_grid` gives it
over every equation.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

INTERNAL_GROUP = "unconstrained_posterior"
COEF_DIM = "coefficient"
COEF_EQUATION = "coef_equation"
COEF_TERM = "coef_term"
RHO_DIM = "error_equation"
# auxiliary free variables whose names do not say so: the Beta variable behind the G = 2 error
# correlation, the sampled spatial-error coefficients (the same values as ``rho``) and the
# non-centred innovations of the censored model's hierarchical effects
INTERNAL_NAMES = frozenset({"corr_u", "rho_error", "group_z", "city_z"})


def is_internal(name: str) -> bool:
    """Whether a posterior variable belongs to :data:`INTERNAL_GROUP`: a transformed value
    (PyMC's trailing ``__``), a standardised-scale quantity (the models' ``_std`` suffix, or
    ``_std_`` inside, e.g. ``chol_std_corr``) or one of :data:`INTERNAL_NAMES`."""
    return (name in INTERNAL_NAMES or name.endswith("__") or name.endswith("_std")
            or "_std_" in name)


def _label(equation: str, term: str) -> str:
    return f"{equation}: {term}"


def stacked_coef(coef) -> xr.DataArray:
    """``coef`` over the present (equation, term) pairs, dimension :data:`COEF_DIM` (module
    docstring); from a grid (equation, term) with NaN cells, the cells NaN in every draw are
    dropped. Accepts the posterior Dataset or its ``coef``; leading dims (chain, draw or
    sample) kept."""
    if isinstance(coef, xr.Dataset):
        coef = coef["coef"]
    if COEF_DIM in coef.dims:
        return coef
    lead = [d for d in coef.dims if d not in ("equation", "term")]
    grid = coef.transpose(*lead, "equation", "term")
    values = grid.values
    sample_axes = tuple(range(len(lead)))
    present = ~np.isnan(values).all(axis=sample_axes) if lead else ~np.isnan(values)
    gi, ti = np.nonzero(present)                      # row-major: equation by equation
    eqs = [str(e) for e in grid["equation"].values[gi]]
    terms = [str(t) for t in grid["term"].values[ti]]
    coords = {d: grid[d].values for d in lead if d in grid.coords}
    coords.update({COEF_DIM: [_label(e, t) for e, t in zip(eqs, terms)],
                   COEF_EQUATION: (COEF_DIM, eqs), COEF_TERM: (COEF_DIM, terms)})
    return xr.DataArray(values[..., gi, ti], dims=(*lead, COEF_DIM), coords=coords,
                        name="coef", attrs=dict(coef.attrs))


def coefficient_pairs(coef) -> list[tuple[str, str]]:
    """The present (equation, term) pairs of ``coef`` (posterior Dataset or DataArray, either
    layout), in :data:`COEF_DIM` order."""
    flat = stacked_coef(coef)
    return list(zip(map(str, flat[COEF_EQUATION].values), map(str, flat[COEF_TERM].values)))


def coef_grid(coef) -> xr.DataArray:
    """``coef`` as the (…, equation, term) grid, NaN where an equation lacks a term, from either
    layout. Given the posterior Dataset, its ``equation`` coordinate (that of ``Sigma``) fixes
    the equations and their order; otherwise the order of first appearance. Terms come in the
    order of first appearance, which is the model's own term order."""
    equations = None
    if isinstance(coef, xr.Dataset):
        if "equation" in coef.coords:
            equations = [str(e) for e in coef["equation"].values]
        coef = coef["coef"]
    if COEF_DIM not in coef.dims:
        return coef
    eqs = [str(e) for e in coef[COEF_EQUATION].values]
    terms = [str(t) for t in coef[COEF_TERM].values]
    equations = equations or list(dict.fromkeys(eqs))
    term_order = list(dict.fromkeys(terms))
    lead = [d for d in coef.dims if d != COEF_DIM]
    flat = coef.transpose(*lead, COEF_DIM).values
    out = np.full(flat.shape[:-1] + (len(equations), len(term_order)), np.nan)
    gi = [equations.index(e) for e in eqs]
    ti = [term_order.index(t) for t in terms]
    out[..., gi, ti] = flat
    coords = {d: coef[d].values for d in lead if d in coef.coords}
    coords.update(equation=equations, term=term_order)
    return xr.DataArray(out, dims=(*lead, "equation", "term"), coords=coords, name="coef",
                        attrs=dict(coef.attrs))


def rho_grid(posterior: xr.Dataset) -> xr.DataArray | None:
    """``rho`` over every equation (NaN without a spatial error), from either layout; None when
    the posterior has no ``rho``. The equations are the posterior's ``equation`` coordinate
    (kept by :func:`tidy_posterior`), else those of ``coef``."""
    if "rho" not in posterior:
        return None
    rho = posterior["rho"]
    if "equation" in rho.dims:
        return rho
    if "equation" in posterior.coords:
        equations = [str(e) for e in posterior["equation"].values]
    elif "coef" in posterior:
        equations = list(dict.fromkeys(e for e, _ in coefficient_pairs(posterior)))
    else:
        equations = [str(e) for e in rho[RHO_DIM].values]
    return (rho.rename({RHO_DIM: "equation"})
            .reindex(equation=equations)          # absent equations become NaN
            .assign_coords(equation=equations))


def _present_rho(rho: xr.DataArray) -> xr.DataArray:
    """``rho`` (…, equation) restricted to the equations with a spatial error (not NaN in every
    draw), dimension :data:`RHO_DIM`."""
    if "equation" not in rho.dims:
        return rho
    other = tuple(d for d in rho.dims if d != "equation")
    keep = ~np.isnan(rho).all(other).values
    return rho.isel(equation=np.flatnonzero(keep)).rename({"equation": RHO_DIM})


def _without_unused_coords(ds: xr.Dataset, keep: tuple[str, ...] = ()) -> xr.Dataset:
    """``ds`` without the coordinates of dimensions none of its variables uses (the moved
    variables' ``structural``, ``exogenous``, ``sd_std_log___dim_0`` …), except ``keep``."""
    used = {d for da in ds.data_vars.values() for d in da.dims}
    drop = [name for name, c in ds.coords.items()
            if name not in keep and not set(c.dims) <= used]
    return ds.drop_vars(drop)


def posterior_and_internal(idata) -> xr.Dataset:
    """The posterior and the :data:`INTERNAL_GROUP` variables in one Dataset (what the sampler
    drew; e.g. the censored model's predictive draws read its standardised parameters)."""
    post = idata.posterior
    if INTERNAL_GROUP not in idata.groups():
        return post
    internal = idata[INTERNAL_GROUP]
    extra = [v for v in internal.data_vars if v not in post]
    return post.assign({v: internal[v] for v in extra}) if extra else post


def tidy_posterior(idata):
    """Put ``idata`` into the layout of the module docstring, in place; returns it.

    Variables :func:`is_internal` names move from ``posterior`` to :data:`INTERNAL_GROUP`
    (merged into it when it exists), ``coef`` is stacked over its present pairs
    (:func:`stacked_coef`) and ``rho`` keeps only the equations with a spatial error
    (dimension :data:`RHO_DIM`). Idempotent, and a posterior without these variables is left
    as it is apart from the move."""
    post = idata.posterior
    internal = [name for name in post.data_vars if is_internal(str(name))]
    if internal:
        moved = _without_unused_coords(post[internal])
        moved.attrs = dict(post.attrs)
        if INTERNAL_GROUP in idata.groups():
            old = idata[INTERNAL_GROUP]
            moved = old.assign({v: moved[v] for v in moved.data_vars if v not in old})
            setattr(idata, INTERNAL_GROUP, moved)
        else:
            idata.add_groups({INTERNAL_GROUP: moved})
    variables = {}
    for name, da in post.data_vars.items():
        if name in internal:
            continue
        if name == "coef":
            da = stacked_coef(da)
        elif name == "rho":
            da = _present_rho(da)
        variables[name] = da
    tidy = xr.Dataset(variables, attrs=dict(post.attrs))
    if "equation" in post.coords:
        # the equations and their order, for coef_grid and rho_grid (Sigma has them too)
        tidy = tidy.assign_coords(equation=post["equation"].values)
    idata.posterior = _without_unused_coords(tidy, keep=("equation",))
    return idata


__all__ = ["INTERNAL_GROUP", "COEF_DIM", "COEF_EQUATION", "COEF_TERM", "RHO_DIM",
           "is_internal", "tidy_posterior", "stacked_coef", "coef_grid", "coefficient_pairs",
           "rho_grid", "posterior_and_internal"]
