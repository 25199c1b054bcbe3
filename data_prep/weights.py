"""Spatial weights W: build, align to the study's cities, handle islands, store in a Dataset.

Sources (all through libpysal): queen or rook contiguity of polygons (GeoJSON/Shapefile or a
GeoDataFrame with a ``city`` column), GAL and GWT neighbour files whose ids are city names,
k-nearest neighbours and distance bands from coordinates, and a libpysal ``W`` built elsewhere
(:func:`weights_from_libpysal`). Every builder returns a :class:`SpatialWeights` whose sparse
matrix is aligned with a given city order.

The neighbour relation C (binary, or the weights of a GWT file) becomes W by row
standardisation W = D⁻¹C with D = diag(C 1) (transform "R"; Anselin 1988, ch. 3), stays the
0/1 relation (transform "B"), or keeps its own weights as given (transform "O", libpysal's name
for the weights a W was built with). W has a zero diagonal and is never held as a dense n × n
array.

Islands (cities with no neighbour) follow an explicit policy (docs/contracts.md, data model: provenance):
``"refuse"`` raises :class:`InputError` naming them; ``"nearest"`` links each island to its
``k_islands`` nearest cities by centroid/coordinates, in both directions so a symmetric relation
stays symmetric; ``"keep"`` leaves a zero row (its spatial lag is 0) and warns. Disconnected
components are counted, and a warning gives their sizes when there is more than one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from data_prep.errors import InputError
from data_prep.files import atomic_write

ISLAND_POLICIES = ("refuse", "nearest", "keep")
SYMMETRISE = (None, "union")
TRANSFORMS = ("R", "B", "O")
POLYGON_SUFFIXES = (".geojson", ".json", ".shp", ".gpkg")
_WEIGHT_VARS = ("weight_origin", "weight_neighbor", "weight_value")
GEOMETRY_VAR = "geometry_wkt"  # (city) WKT polygons of the map, CRS in attrs["geometry_crs"]


@dataclass
class SpatialWeights:
    """A spatial weights matrix aligned with an ordered tuple of cities.

    ``matrix[r, s]`` is the weight of city ``cities[s]`` in the spatial lag of ``cities[r]``.
    ``symmetric_relation`` says whether the underlying binary neighbour relation is symmetric
    (then the spectrum of a row-standardised W is real). ``islands`` are the cities whose row
    was empty before the island policy was applied.
    """

    matrix: sp.csr_matrix
    cities: tuple[str, ...]
    transform: str
    symmetric_relation: bool
    source: str
    island_policy: str
    islands: tuple[str, ...]
    n_components: int
    # the map behind polygon weights: city -> WKT polygon, and its CRS ("" when unknown)
    geometry: Mapping[str, str] | None = None
    crs: str = ""

    @property
    def n(self) -> int:
        return len(self.cities)

    @property
    def n_links(self) -> int:
        return int(self.matrix.nnz)

    def component_sizes(self) -> np.ndarray:
        """Sizes of the (weakly) connected components, largest first."""
        return _components(self.matrix)[1]

    def aligned(self, cities: Sequence[str]) -> "SpatialWeights":
        """The same weights with rows and columns in the order of ``cities`` (same set required)."""
        cities = _city_tuple(cities, "cities")
        order = _alignment(self.cities, cities, self.source)
        return replace(self, matrix=sp.csr_matrix(self.matrix[order][:, order]), cities=cities)

    def summary(self) -> str:
        """One line: size, links, mean neighbours, islands and components."""
        counts = np.diff(self.matrix.indptr)
        return (f"{self.source}: {self.n} cities, {self.n_links} links, "
                f"mean {counts.mean():.2f} neighbours (min {counts.min()}, max {counts.max()}), "
                f"transform {self.transform}, islands {len(self.islands)} "
                f"(policy {self.island_policy}), {self.n_components} component(s) "
                f"of sizes {self.component_sizes().tolist()}")


# ----------------------------------------------------------------------------- helpers

def _name_list(names: Sequence[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(str(x) for x in names[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def _city_tuple(values, what: str) -> tuple[str, ...]:
    cities = tuple(str(c) for c in values)
    seen: set[str] = set()
    dups = [c for c in cities if c in seen or seen.add(c)]
    if dups:
        raise InputError(f"{what} repeat these cities: {_name_list(sorted(set(dups)))}")
    return cities


def _alignment(ids: Sequence[str], cities: Sequence[str], source: str) -> np.ndarray:
    """Index array putting ``ids`` in the order of ``cities``; InputError if the sets differ."""
    position = {c: i for i, c in enumerate(ids)}
    absent = [c for c in cities if c not in position]
    if absent:
        raise InputError(f"{source}: cities absent from the weights: {_name_list(absent)}")
    wanted = set(cities)
    unknown = [c for c in ids if c not in wanted]
    if unknown:
        raise InputError(f"{source}: weights ids not among the cities: {_name_list(unknown)}")
    return np.array([position[c] for c in cities], dtype=np.int64)


def _components(C: sp.spmatrix) -> tuple[int, np.ndarray]:
    count, labels = connected_components(C, directed=True, connection="weak")
    sizes = np.sort(np.bincount(labels, minlength=count))[::-1]
    return int(count), sizes


def _pattern_symmetric(C: sp.csr_matrix) -> bool:
    B = (C != 0).astype(np.int8)
    return (B != B.T).nnz == 0


def row_standardise(C: sp.spmatrix) -> sp.csr_matrix:
    """W = D⁻¹C with D = diag(row sums of C); rows summing to zero stay zero."""
    C = sp.csr_matrix(C, dtype=float)
    sums = np.asarray(C.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums != 0)
    return sp.csr_matrix(sp.diags(inv) @ C)


def _coordinates_for(coordinates, cities: tuple[str, ...], source: str) -> np.ndarray:
    """Coordinates (n, 2) in the order of ``cities`` from a DataFrame, mapping or array."""
    if isinstance(coordinates, pd.DataFrame):
        missing = {"city", "x", "y"} - set(coordinates.columns)
        if missing:
            raise InputError(f"{source}: coordinates table lacks columns {sorted(missing)}")
        coordinates = {str(c): (x, y) for c, x, y in
                       coordinates[["city", "x", "y"]].itertuples(index=False)}
    if isinstance(coordinates, Mapping):
        absent = [c for c in cities if c not in coordinates]
        if absent:
            raise InputError(f"{source}: no coordinates for cities {_name_list(absent)}")
        xy = np.array([coordinates[c] for c in cities], dtype=float)
    else:
        xy = np.asarray(coordinates, dtype=float)
    if xy.shape != (len(cities), 2):
        raise InputError(f"{source}: coordinates have shape {xy.shape}, expected "
                         f"({len(cities)}, 2) aligned with the cities")
    bad = [c for c, ok in zip(cities, np.isfinite(xy).all(axis=1)) if not ok]
    if bad:
        raise InputError(f"{source}: non-finite coordinates for cities {_name_list(bad)}")
    return xy


def symmetrised(C: sp.spmatrix, how: str | None) -> sp.csr_matrix:
    """The relation C itself (``how`` None) or its union C ∨ Cᵀ (``"union"``: r and s are
    neighbours when either lists the other, with the larger of the two weights).

    The union turns a k-nearest-neighbour relation into a symmetric one, so a row-standardised
    W is similar to a symmetric matrix (real spectrum, quadrature log-determinant available).
    """
    if how not in SYMMETRISE:
        raise InputError(f"symmetrise must be None or 'union', not {how!r}")
    C = sp.csr_matrix(C, dtype=float)
    return C if how is None else sp.csr_matrix(C.maximum(C.T))


def _finalise(C: sp.spmatrix, ids: Sequence[str], cities, *, source: str, island_policy: str,
              k_islands: int, transform: str, coordinates=None,
              symmetrise: str | None = None) -> SpatialWeights:
    """Align C (rows/cols in ``ids`` order) to ``cities``, symmetrise it if asked, apply the
    island policy, transform."""
    C = symmetrised(C, symmetrise)
    if symmetrise is not None:
        source = f"{source}, {symmetrise} with its reverse"
    if island_policy not in ISLAND_POLICIES:
        raise InputError(f"island_policy must be one of {ISLAND_POLICIES}, not {island_policy!r}")
    if transform not in TRANSFORMS:
        raise InputError(f"transform must be 'R' (row-standardised), 'B' (binary) or 'O' "
                         f"(the weights as given), not {transform!r}")
    ids = _city_tuple(ids, source)
    cities = ids if cities is None else _city_tuple(cities, "cities")
    order = _alignment(ids, cities, source)
    C = sp.csr_matrix(sp.csr_matrix(C, dtype=float)[order][:, order])
    C.eliminate_zeros()
    if (C.data < 0).any() or not np.isfinite(C.data).all():
        rows = np.unique(np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))[
            (C.data < 0) | ~np.isfinite(C.data)])
        raise InputError(f"{source}: negative or non-finite weights for cities "
                         f"{_name_list([cities[r] for r in rows])}")
    self_linked = np.flatnonzero(C.diagonal() != 0)
    if self_linked.size:
        raise InputError(f"{source}: cities listed as their own neighbour: "
                         f"{_name_list([cities[r] for r in self_linked])}")

    empty = np.flatnonzero(np.diff(C.indptr) == 0)
    islands = tuple(cities[r] for r in empty)
    if islands:
        if island_policy == "refuse":
            raise InputError(f"{source}: island cities with no neighbour: {_name_list(islands)} "
                             f"(choose island_policy 'nearest' or 'keep')")
        if island_policy == "keep":
            warnings.warn(f"{source}: {len(islands)} island cities keep a zero row in W (their "
                          f"spatial lag is 0): {_name_list(islands)}", stacklevel=3)
        else:
            C = _link_islands(C, empty, cities, coordinates, k_islands, source)

    count, sizes = _components(C)
    if count > 1:
        warnings.warn(f"{source}: the weights split into {count} disconnected components of "
                      f"sizes {_name_list(sizes.tolist())}", stacklevel=3)
    symmetric = _pattern_symmetric(C)
    if transform == "R":
        W = row_standardise(C)
    elif transform == "B":
        W = sp.csr_matrix((C != 0).astype(float))
    else:
        W = sp.csr_matrix(C, dtype=float)
    W.sort_indices()
    return SpatialWeights(W, cities, transform, symmetric, source, island_policy, islands, count)


def _link_islands(C: sp.csr_matrix, empty: np.ndarray, cities, coordinates, k: int,
                  source: str) -> sp.csr_matrix:
    """Add links island ↔ its k nearest other cities, both ways, with weight 1 (binary C) or the
    median existing weight (weighted C)."""
    if coordinates is None:
        raise InputError(f"{source}: island_policy 'nearest' needs city coordinates "
                         f"(islands: {_name_list([cities[r] for r in empty])})")
    if k < 1 or k >= len(cities):
        raise InputError(f"k_islands must be between 1 and {len(cities) - 1}, not {k}")
    xy = _coordinates_for(coordinates, cities, source)
    _, nearest = cKDTree(xy).query(xy[empty], k=k + 1)
    rows, cols = [], []
    for r, candidates in zip(empty, np.atleast_2d(nearest)):
        chosen = [c for c in candidates if c != r][:k]
        rows += [r] * k + chosen
        cols += chosen + [r] * k
    value = 1.0 if C.nnz == 0 or np.all(C.data == 1.0) else float(np.median(C.data))
    add = sp.csr_matrix((np.full(len(rows), value), (rows, cols)), shape=C.shape)
    add.data[:] = value  # duplicates (two islands choosing each other) stay one link
    out = C.maximum(add)
    return sp.csr_matrix(out)


def _from_libpysal(w, ids_hint=None) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    """(C, ids) from a libpysal W: C in the order of w.id_order, ids as strings."""
    ids = tuple(str(i) for i in w.id_order)
    return sp.csr_matrix(w.sparse, dtype=float), ids


def is_libpysal_weights(obj) -> bool:
    """True for a libpysal ``W`` (``Queen``, ``KNN``, ``lat2W(...)`` and the like), recognised by
    its attributes so that libpysal need not be imported to ask."""
    return all(hasattr(obj, a) for a in ("neighbors", "weights", "id_order", "transformations",
                                         "transform"))


def _libpysal_relation(w, weights: Mapping) -> sp.csr_matrix:
    """The n × n sparse matrix of ``weights`` (a libpysal id → list-of-weights mapping aligned
    with ``w.neighbors``), rows and columns in the order of ``w.id_order``; O(links)."""
    ids = list(w.id_order)
    pos = {i: k for k, i in enumerate(ids)}
    counts = np.array([len(w.neighbors[i]) for i in ids], dtype=np.int64)
    rows = np.repeat(np.arange(len(ids)), counts)
    cols = np.fromiter((pos[j] for i in ids for j in w.neighbors[i]), dtype=np.int64,
                       count=int(counts.sum()))
    vals = np.fromiter((float(v) for i in ids for v in weights[i]), dtype=float,
                       count=int(counts.sum()))
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(ids), len(ids)))


def weights_from_libpysal(w, cities=None, *, island_policy: str = "refuse", coordinates=None,
                          k_islands: int = 1) -> SpatialWeights:
    """A libpysal ``W`` as :class:`SpatialWeights`, keeping its ids and its transform.

    Ids become text (``0`` → ``"0"``, matched against the data's city column read as text);
    ``cities`` aligns the result as every builder here does. The W's transform is kept:
    ``"R"`` (``w.transform = "r"``) is the W's original relation row-standardised here, and
    ``"B"`` its 0/1 relation — the same W a GAL/GWT file of that relation gives — while ``"O"``
    (libpysal's default, the weights the W was built with) and the other libpysal transforms
    (``"D"``, ``"V"``) keep the W's current weights as they are, with a warning for ``"O"``:
    such a W is not row-standardised unless it was built so. Islands follow ``island_policy``
    as for the files ('nearest' needs ``coordinates``); only the sparse matrix is built.
    """
    if not is_libpysal_weights(w):
        raise InputError(f"expected a libpysal W, not {type(w).__name__}")
    transform = str(w.transform).upper()
    source = f"libpysal {type(w).__name__}"
    original = w.transformations.get("O", w.weights)
    if transform in ("R", "B"):
        C, kept = _libpysal_relation(w, original), transform
    else:
        C, kept = _libpysal_relation(w, w.weights), "O"
        if transform == "O" and not np.allclose(np.asarray(C.sum(axis=1)).ravel()[
                np.diff(C.indptr) > 0], 1.0):
            warnings.warn(f"{source} with transform 'O' is used as given, not "
                          f"row-standardised; set w.transform = 'r' first for the "
                          f"row-standardised W of the usual spatial models", stacklevel=2)
    ids = [str(i) for i in w.id_order]
    out = _finalise(C, ids, cities, source=f"{source} (transform {transform})",
                    island_policy=island_policy, k_islands=k_islands, transform=kept,
                    coordinates=coordinates)
    return out if kept != "O" else replace(out, transform=transform)


def to_libpysal(weights: SpatialWeights):
    """A libpysal ``W`` with city-name ids (for esda, spreg and the GAL/GWT writers)."""
    from libpysal.weights import W

    M = weights.matrix.tocsr()
    neighbors, values = {}, {}
    for r, city in enumerate(weights.cities):
        lo, hi = M.indptr[r], M.indptr[r + 1]
        neighbors[city] = [weights.cities[c] for c in M.indices[lo:hi]]
        values[city] = M.data[lo:hi].tolist()
    return W(neighbors, values, id_order=list(weights.cities), silence_warnings=True)


# ----------------------------------------------------------------------------- builders

def weights_from_polygons(source, cities=None, *, id_column: str = "city",
                          contiguity: str = "queen", island_policy: str = "refuse",
                          k_islands: int = 1, transform: str = "R") -> SpatialWeights:
    """Queen (shared vertex) or rook (shared edge) contiguity of city polygons via libpysal.

    ``source`` is a GeoJSON/Shapefile path or a GeoDataFrame with column ``id_column``. The
    polygon centroids serve the 'nearest' island policy.
    """
    import geopandas as gpd
    from libpysal.weights import Queen, Rook

    if contiguity not in ("queen", "rook"):
        raise InputError(f"contiguity must be 'queen' or 'rook', not {contiguity!r}")
    if isinstance(source, gpd.GeoDataFrame):
        gdf, label = source, "polygons"
    else:
        label = str(source)
        if not Path(label).exists():
            raise InputError(f"{label}: polygon file not found")
        try:
            gdf = gpd.read_file(label)
        except Exception as err:  # the driver's own message says what is wrong
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(f"{label}: cannot read polygons ({reason})") from None
    if id_column not in gdf.columns:
        raise InputError(f"{label}: no column {id_column!r} (columns: {_name_list(gdf.columns)})")
    ids = _city_tuple(gdf[id_column].astype(str), f"{label} column {id_column!r}")
    geom = gdf.geometry
    bad = [c for c, g in zip(ids, geom) if g is None or g.is_empty
           or g.geom_type not in ("Polygon", "MultiPolygon")]
    if bad:
        raise InputError(f"{label}: missing or non-polygon geometry for cities {_name_list(bad)}")
    builder = Queen if contiguity == "queen" else Rook
    frame = gpd.GeoDataFrame({"_id": list(ids)}, geometry=list(geom), crs=gdf.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands and components are reported by _finalise
        w = builder.from_dataframe(frame, ids="_id", use_index=False, silence_warnings=True)
        centroids = frame.geometry.centroid
    C, wids = _from_libpysal(w)
    coords = dict(zip(ids, zip(centroids.x, centroids.y)))
    weights = _finalise(C, wids, cities, source=f"{contiguity} contiguity of {label}",
                        island_policy=island_policy, k_islands=k_islands, transform=transform,
                        coordinates=coords)
    # the polygons travel with the weights so the Dataset can store the map (choropleths)
    return replace(weights, geometry={c: g.wkt for c, g in zip(ids, geom)},
                   crs="" if gdf.crs is None else gdf.crs.to_string())


def _read_neighbour_file(path, kind: str):
    import libpysal

    label = str(path)
    if not Path(label).exists():
        raise InputError(f"{label}: {kind} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = libpysal.io.open(label, "r", kind.lower())
            try:
                return f.read(), label
            finally:
                f.close()
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"{label}: not a readable {kind} file ({err})") from None


def read_gal(path) -> tuple[tuple[str, ...], sp.csr_matrix]:
    """(ids, binary relation C) of a GAL file, ids kept as text ("0000" stays "0000").

    Format: a header line ``n`` (or GeoDa's ``0 n shapefile key``), then per unit a line
    ``id k`` and a line of its k neighbour ids, separated by blanks. Parsed here rather than by
    libpysal because its reader turns numeric-looking ids into numbers and answers an id with a
    space or an undeclared neighbour with "too many values to unpack" or a bare KeyError; every
    problem here is one line naming the file, the line number and the id.
    """
    label = str(path)
    name = Path(label).name
    if not Path(label).exists():
        raise InputError(f"{label}: GAL file not found")
    try:
        lines = Path(label).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{label}: not a readable GAL file ({err})") from None
    if not lines or not lines[0].split():
        raise InputError(f"GAL {name}: empty file or empty header line")
    head = lines[0].split()
    count_text = head[1] if len(head) >= 2 and head[0] == "0" else head[0]
    if not count_text.isdigit():
        raise InputError(f"GAL {name} line 1: expected the number of cities, not {lines[0]!r}")
    expected = int(count_text)
    ids: list[str] = []
    seen: set[str] = set()  # membership in O(1): a list search made reading O(n²)
    links: list[tuple[str, str, int]] = []
    k = 1
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        fields = lines[k].split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise InputError(
                f"GAL {name} line {k + 1}: expected 'city number-of-neighbours', found "
                f"{lines[k].strip()!r}" + (" (GAL ids cannot contain spaces)"
                                           if len(fields) > 2 else ""))
        city, n_nb = fields[0], int(fields[1])
        if city in seen:
            raise InputError(f"GAL {name} line {k + 1}: city {city} has a second entry")
        ids.append(city)
        seen.add(city)
        nb = lines[k + 1].split() if k + 1 < len(lines) else []
        if len(nb) != n_nb:
            raise InputError(f"GAL {name} line {k + 2}: city {city} should list {n_nb} "
                             f"neighbours but {len(nb)} ids are there"
                             + (" (GAL ids cannot contain spaces)" if len(nb) > n_nb else ""))
        links += [(city, other, k + 2) for other in nb]
        k += 2
    if len(ids) != expected:
        raise InputError(f"GAL {name}: the header announces {expected} cities but the file has "
                         f"{len(ids)} entries")
    pos = {c: i for i, c in enumerate(ids)}
    undeclared = [(c, o, ln) for c, o, ln in links if o not in pos]
    if undeclared:
        c, o, ln = undeclared[0]
        raise InputError(f"GAL {name} line {ln}: city {c} names neighbour {o}, which has no "
                         f"entry of its own in the file ({len(undeclared)} such link(s))")
    rows = [pos[c] for c, _, _ in links]
    cols = [pos[o] for _, o, _ in links]
    C = sp.csr_matrix((np.ones(len(links)), (rows, cols)), shape=(len(ids), len(ids)))
    C.data[:] = 1.0  # a repeated neighbour is one link
    return tuple(ids), C


def weights_from_gal(path, cities=None, *, island_policy: str = "refuse", transform: str = "R",
                     coordinates=None, k_islands: int = 1,
                     symmetrise: str | None = None) -> SpatialWeights:
    """Binary neighbour relation from a GAL file whose ids are city names (:func:`read_gal`).

    ``coordinates`` (DataFrame city,x,y; mapping city → (x, y); or an (n, 2) array aligned with
    ``cities``) is needed only for island_policy 'nearest'. An asymmetric relation (A lists B
    but B does not list A) is accepted as given and row-standardised, with a warning that
    counts the links lacking a reverse: contiguity is symmetric, so it is often a typing error,
    but k-nearest-neighbour relations are asymmetric by design. ``symmetrise="union"`` makes
    it symmetric (:func:`symmetrised`) instead.
    """
    ids, C = read_gal(path)
    source = f"GAL {Path(str(path)).name}"
    missing_reverse = int(((C != 0).astype(np.int8) - (C.T != 0).astype(np.int8) > 0).sum())
    if missing_reverse and symmetrise is None:
        warnings.warn(f"{source}: the neighbour relation is asymmetric: {missing_reverse} of "
                      f"{C.nnz} links have no reverse link; used as given (each row "
                      f"row-standardised), so W is not similar to a symmetric matrix (symmetrise "
                      f"'union' makes it symmetric)",
                      stacklevel=2)
    return _finalise(C, ids, cities, source=source,
                     island_policy=island_policy, k_islands=k_islands, transform=transform,
                     coordinates=coordinates, symmetrise=symmetrise)


def weights_from_gwt(path, cities=None, *, island_policy: str = "refuse", transform: str = "R",
                     coordinates=None, k_islands: int = 1,
                     symmetrise: str | None = None) -> SpatialWeights:
    """Weighted neighbour relation from a GWT file (lines ``origin neighbour weight``).

    A GWT file lists links only, so a city without links is absent from it: pass ``cities``
    and expect an error naming it (use GAL for maps with islands). Transform 'R' row-standardises
    the file's weights; 'B' keeps the 0/1 relation.
    """
    w, label = _read_neighbour_file(path, "GWT")
    C, ids = _from_libpysal(w)
    return _finalise(C, ids, cities, source=f"GWT {Path(label).name}",
                     island_policy=island_policy, k_islands=k_islands, transform=transform,
                     coordinates=coordinates, symmetrise=symmetrise)


def weights_from_file(path, cities=None, **kwargs) -> SpatialWeights:
    """Dispatch on the suffix: .gal, .gwt, or a polygon file (.geojson/.json/.shp/.gpkg)."""
    suffix = Path(str(path)).suffix.lower()
    if suffix == ".gal":
        return weights_from_gal(path, cities, **kwargs)
    if suffix == ".gwt":
        return weights_from_gwt(path, cities, **kwargs)
    if suffix in POLYGON_SUFFIXES:
        return weights_from_polygons(path, cities, **kwargs)
    raise InputError(f"{path}: unknown weights format {suffix!r} "
                     f"(expected .gal, .gwt, {', '.join(POLYGON_SUFFIXES)})")


def weights_from_coordinates(coords, cities, *, k: int | None = None,
                             threshold: float | None = None, island_policy: str = "refuse",
                             transform: str = "R", k_islands: int = 1,
                             symmetrise: str | None = None) -> SpatialWeights:
    """k-nearest-neighbour (asymmetric relation) or distance-band (symmetric) weights via libpysal.

    Exactly one of ``k`` and ``threshold`` (Euclidean distance, same units as ``coords``).
    ``symmetrise="union"`` links r and s when either is among the other's k nearest: a
    symmetric relation (real spectrum; needed for the quadrature log-determinant above the
    dense-spectrum threshold, see ``data_prep.spectrum.quadrature``).
    """
    from libpysal.weights import KNN, DistanceBand

    cities = _city_tuple(cities, "cities")
    xy = _coordinates_for(coords, cities, "coordinates")
    if (k is None) == (threshold is None):
        raise InputError("give exactly one of k (nearest neighbours) and threshold (distance band)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if k is not None:
            if not 1 <= k < len(cities):
                raise InputError(f"k must be between 1 and {len(cities) - 1}, not {k}")
            w = KNN.from_array(xy, k=k, ids=list(cities))
            source = f"{k}-nearest neighbours"
        else:
            if not threshold > 0:
                raise InputError(f"threshold must be positive, not {threshold}")
            w = DistanceBand(xy, threshold=threshold, binary=True, ids=list(cities),
                             silence_warnings=True)
            source = f"distance band {threshold:g}"
    C, ids = _from_libpysal(w)
    return _finalise(C, ids, cities, source=source, island_policy=island_policy,
                     k_islands=k_islands, transform=transform, coordinates=xy,
                     symmetrise=symmetrise)


# ----------------------------------------------------------------------------- writers

def _check_writable_ids(weights: SpatialWeights, kind: str) -> None:
    spaced = [c for c in weights.cities if any(ch.isspace() for ch in c) or not c]
    if spaced:
        raise InputError(f"{kind} files separate ids by spaces; these city names cannot be "
                         f"written: {_name_list(spaced)}")


def write_gal(weights: SpatialWeights, path) -> None:
    """Write the binary relation as a GAL file (ids = city names), atomically."""
    import libpysal

    _check_writable_ids(weights, "GAL")
    w = to_libpysal(weights)

    def write(tmp):
        f = libpysal.io.open(tmp, "w", "gal")
        try:
            f.write(w)
        finally:
            f.close()
    atomic_write(path, write)


def write_gwt(weights: SpatialWeights, path) -> None:
    """Write the weights as a GWT file (ids = city names), atomically.

    GWT lists links only, so weights with zero rows (kept islands) are refused.
    """
    import libpysal

    _check_writable_ids(weights, "GWT")
    zero = [weights.cities[r] for r in np.flatnonzero(np.diff(weights.matrix.indptr) == 0)]
    if zero:
        raise InputError(f"GWT cannot carry cities without neighbours: {_name_list(zero)}; "
                         f"write GAL instead")
    w = to_libpysal(weights)

    def write(tmp):
        f = libpysal.io.open(tmp, "w", "gwt")
        try:
            f.shpName, f.varName = "unknown", "city"
            f.write(w)
        finally:
            f.close()
    atomic_write(path, write)


# ----------------------------------------------------------------------------- Dataset storage

def weights_to_dataset(ds: xr.Dataset, weights: SpatialWeights) -> xr.Dataset:
    """Store W as COO arrays on dim ``link`` aligned with ``ds.city`` (re-ordered if needed).

    Weights built from polygons also store their map: ``geometry_wkt`` (city), WKT polygons,
    with the CRS in ``attrs["geometry_crs"]`` (for the choropleths of ``models.study.maps``).
    """
    if "city" not in ds.coords:
        raise InputError("the dataset has no 'city' coordinate to align the weights with")
    weights = weights.aligned([str(c) for c in ds["city"].values])
    coo = weights.matrix.tocoo()
    order = np.lexsort((coo.col, coo.row))
    out = ds.drop_vars([v for v in _WEIGHT_VARS if v in ds.variables])
    out = out.assign(
        weight_origin=("link", coo.row[order].astype(np.int64)),
        weight_neighbor=("link", coo.col[order].astype(np.int64)),
        weight_value=("link", coo.data[order].astype(float)),
    )
    if weights.geometry is not None:  # the map of polygon weights, as WKT per city
        out = out.assign(**{GEOMETRY_VAR: ("city", [weights.geometry[c] for c in weights.cities])})
        out.attrs["geometry_crs"] = weights.crs
    out.attrs.update(weights_transform=weights.transform, weights_source=weights.source,
                     island_policy=weights.island_policy,
                     weights_symmetric_relation="true" if weights.symmetric_relation else "false",
                     weights_islands=",".join(weights.islands))
    return out


def weights_from_dataset(ds: xr.Dataset) -> SpatialWeights:
    """Rebuild the :class:`SpatialWeights` stored by :func:`weights_to_dataset`."""
    missing = [v for v in _WEIGHT_VARS if v not in ds.variables]
    if missing:
        raise InputError(f"the dataset holds no spatial weights (missing {', '.join(missing)})")
    cities = tuple(str(c) for c in ds["city"].values)
    n = len(cities)
    r = np.asarray(ds["weight_origin"].values, dtype=np.int64)
    c = np.asarray(ds["weight_neighbor"].values, dtype=np.int64)
    v = np.asarray(ds["weight_value"].values, dtype=float)
    if r.size and (min(r.min(), c.min()) < 0 or max(r.max(), c.max()) >= n):
        raise InputError(f"the dataset's weight indices fall outside the {n} cities")
    M = sp.csr_matrix((v, (r, c)), shape=(n, n))
    M.sort_indices()
    attrs = ds.attrs
    islands = tuple(x for x in str(attrs.get("weights_islands", "")).split(",") if x)
    return SpatialWeights(
        M, cities, str(attrs.get("weights_transform", "R")),
        str(attrs.get("weights_symmetric_relation", "false")).lower() == "true",
        str(attrs.get("weights_source", "dataset")), str(attrs.get("island_policy", "refuse")),
        islands, _components(M)[0],
        dict(zip(cities, map(str, ds[GEOMETRY_VAR].values))) if GEOMETRY_VAR in ds else None,
        str(attrs.get("geometry_crs", "")))


# ----------------------------------------------------------------------------- subsets

SUBSET_ISLAND_POLICIES = ("refuse", "drop", "keep")


def restrict_weights(weights: SpatialWeights, keep: Sequence[str], *,
                     island_policy: str = "refuse",
                     reason: str = "the subset") -> tuple[SpatialWeights, tuple[str, ...]]:
    """W on the cities ``keep`` only (in their order), and the cities dropped as new islands.

    The rows and columns of the other cities are removed; a row-standardised W (transform "R")
    is row-standardised again, which equals standardising the restricted neighbour relation.
    A city whose neighbours were all removed becomes a *new* island (cities that were islands
    before are not counted); ``island_policy`` says what happens to it: "refuse" raises
    InputError naming it, "drop" removes it as well (repeated until no new island is left; an
    asymmetric relation can strand further cities), "keep" keeps it with a zero row (spatial
    lag 0). ``reason`` names the subset in messages.
    """
    if island_policy not in SUBSET_ISLAND_POLICIES:
        raise InputError(f"island policy for a subset must be one of "
                         f"{', '.join(SUBSET_ISLAND_POLICIES)}, not {island_policy!r}")
    keep = _city_tuple(keep, "cities to keep")
    unknown = sorted(set(keep) - set(weights.cities))
    if unknown:
        raise InputError(f"weights ({weights.source}): {reason} names cities not in the weights: "
                         f"{_name_list(unknown)}")
    pos = {c: i for i, c in enumerate(weights.cities)}
    # cities without neighbours already (islands kept by policy "keep"); an island linked by
    # policy "nearest" has neighbours now and can become an island again here
    before = {weights.cities[r] for r in np.flatnonzero(np.diff(weights.matrix.indptr) == 0)}
    dropped: list[str] = []
    cities = keep
    while True:
        idx = np.array([pos[c] for c in cities], dtype=np.int64)
        M = sp.csr_matrix(weights.matrix[idx][:, idx])
        lost = [cities[r] for r in np.flatnonzero(np.diff(M.indptr) == 0)
                if cities[r] not in before]
        if not lost or island_policy == "keep":
            break
        if island_policy == "refuse":
            raise InputError(f"weights ({weights.source}): {reason} leaves cities without "
                             f"neighbours: {_name_list(lost)} (island policy 'refuse'; use "
                             f"'drop' or 'keep')")
        dropped += lost
        cities = tuple(c for c in cities if c not in set(lost))
    if weights.transform == "R":
        M = row_standardise(M)
    empty = {cities[r] for r in np.flatnonzero(np.diff(M.indptr) == 0)}
    islands = tuple(c for c in cities if c in weights.islands or c in empty)
    count = _components(M)[0]
    geometry = (None if weights.geometry is None
                else {c: weights.geometry[c] for c in cities if c in weights.geometry})
    restricted = SpatialWeights(M, cities, weights.transform, weights.symmetric_relation,
                                f"{weights.source}, {reason}", weights.island_policy, islands,
                                count, geometry, weights.crs)
    return restricted, tuple(dropped)
