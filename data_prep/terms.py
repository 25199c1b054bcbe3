"""The names of spatial-lag terms, written once for every layer.

A term ``W(x)`` is the spatial lag W x of column (or system dependent) ``x``; ``Wk(x)`` is W^k x
(``W2(x)``: the second-order instrument lag, docs/method.md §2a). In an equation of a system
whose dependents are ``y_1..y_G`` a term is *structural* when it is another dependent (an entry
of B0, contemporaneous) or the spatial lag of a dependent (an entry of B1); every other term is
exogenous (docs/method.md §2: y = B0 y + B1 W y + X β + u). The simulator (data_prep.synthetic),
the specification (models.spec) and both estimators read term names through these functions,
so the grammar lives here, in the lower layer they all share.
"""

from __future__ import annotations

import re
from typing import Collection, Iterable

INTERCEPT = "Intercept"
LAG = re.compile(r"^W(\d*)\((.*)\)$", re.S)


def lag_name(name: str, power: int = 1) -> str:
    """Name of W^power applied to ``name``: "W(x)", "W2(x)". A lagged name lagged again adds
    the powers ("W(x)" lagged once is "W2(x)"), so numerically identical columns share a name."""
    m = LAG.match(name)
    if m and name != INTERCEPT:
        power += int(m.group(1) or 1)
        name = m.group(2)
    return f"W({name})" if power == 1 else f"W{power}({name})"


def lag_power(term: str) -> int:
    """k of a term W^k(x) ("W(x)" → 1, "W2(x)" → 2); 0 for a term that is not a spatial lag."""
    m = LAG.match(term)
    return int(m.group(1) or 1) if m else 0


def lag_target(term: str) -> str | None:
    """x of a first-order spatial lag "W(x)"; None for any other term (including "W2(x)")."""
    m = LAG.match(term)
    return m.group(2) if m and not m.group(1) else None


def is_lag(term: str) -> bool:
    """True for a spatial lag of any order, "W(x)" or "W2(x)"."""
    return LAG.match(term) is not None


def structural_slot(term: str, dependents: Collection[str]) -> tuple[str, int] | None:
    """(dependent, order) of a structural term, None for an exogenous one.

    order 0: the dependent itself (an entry of B0); order 1: its spatial lag W(dependent) (an
    entry of B1).
    """
    target = lag_target(term)
    if target is not None and target in dependents:
        return target, 1
    if term in dependents:
        return term, 0
    return None


def is_structural(term: str, dependents: Collection[str]) -> bool:
    """True when ``term`` is a dependent of the system or its spatial lag (an entry of B0 or B1)."""
    return structural_slot(term, dependents) is not None


def split_structural(terms: Iterable[str], dependents: Collection[str]
                     ) -> tuple[list[str], list[str]]:
    """(structural, exogenous) terms, each in the order given."""
    terms = list(terms)
    structural = [t for t in terms if is_structural(t, dependents)]
    return structural, [t for t in terms if t not in structural]
