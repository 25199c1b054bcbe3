"""scripts/prepare_data.py end to end (docs/contracts.md contract 1), run as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep.dataset import load_dataset
from tests.fixtures import run_main, write_demo_files

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "prepare_data.py"

synthetic = pytest.importorskip("data_prep.synthetic.demo")


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=120)


def run_inline(capsys, *args) -> tuple[int, str, str]:
    return run_main(capsys, "prepare_data", *args)


@pytest.fixture(scope="module")
def demo():
    return synthetic.demo_inputs()


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory):
    """The demo's tables as user files: CSVs and a GAL of its (island-linked) queen weights."""
    return write_demo_files(tmp_path_factory.mktemp("inputs"), demo)


@pytest.fixture(scope="module")
def demo_nc(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "x.nc"
    proc = run("--demo", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_demo_end_to_end(demo_nc, demo):
    out, proc = demo_nc
    assert f"wrote {out}" in proc.stdout and "241 cities, 12 years" in proc.stdout
    ds = load_dataset(out)
    assert ds.sizes["city"] == 241 and ds.sizes["industry"] == 19
    assert ds.attrs["synthetic"] == "true" and ds.attrs["island_policy"] == "nearest"
    for v in ("ER", "PSS", "PSD", "ER_flag", "Interact_PSS", "Gov", "tier", "W_eigenvalues"):
        assert v in ds, v
    assert ds.ER.sel(year=2021).isnull().all() and ds.ER.sel(year=2010).notnull().all()
    assert ds.PSS.notnull().all() and ds.PSD.notnull().all()
    # PSS by an independent pandas route on the long table (largest location quotient)
    e = demo.employment
    share = e.employment / e.groupby(["city", "year"]).employment.transform("sum")
    national = e.groupby(["year", "industry"]).employment.transform("sum")
    nshare = national / e.groupby("year").employment.transform("sum")
    pss = (share / nshare).groupby([e.city, e.year]).max().unstack()
    np.testing.assert_allclose(ds.PSS.sel(city=pss.index, year=pss.columns).values,
                               pss.values, rtol=1e-10)
    assert 2.0 < float(ds.PSD.mean()) < 2.6


def test_user_files_reproduce_the_demo(files, demo_nc, tmp_path):
    out = tmp_path / "data.nc"
    proc = run("--employment", files / "E.csv", "--weights", files / "W.gal", "--covariates",
               files / "C.csv", "--cities", files / "K.csv", "--out", out, "--winsorize", "0.01")
    assert proc.returncode == 0, proc.stderr
    ds, ref = load_dataset(out), load_dataset(demo_nc[0])
    assert ds.attrs["synthetic"] == "false" and '"winsorize": [0.01, 0.99]' in ds.attrs["choices"]
    np.testing.assert_allclose(ds.PSD.values, np.clip(ref.PSD.values,
                                                      *np.quantile(ref.PSD.values, [.01, .99])),
                               rtol=1e-6)  # the CSV keeps 4 decimals of employment
    np.testing.assert_allclose(np.sort(ds.W_eigenvalues.values),
                               np.sort(ref.W_eigenvalues.values), atol=1e-10)
    assert float(ds.Gov.sel(city="City001", year=2015)) == pytest.approx(
        float(ref.Gov.sel(city="City001", year=2015)))


def bad_employment(files, folder: Path, what: str) -> Path:
    e = pd.read_csv(files / "E.csv")
    if what == "negative":
        e.loc[7, "employment"] = -1.0
    elif what == "unbalanced":
        e = e.drop(index=[0, 1])
    elif what == "unknown city":
        e = e[e.city != "City005"]
    path = folder / "E.csv"
    e.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("what, message", [
    ("negative", r"E\.csv: column employment is negative in lines 9 \(cities City001\)"),
    ("unbalanced", r"E\.csv: unbalanced panel, 2 \(city, year, industry\) cells"),
    ("unknown city", r"cities in the weights but not in the employment table: City005"),
])
def test_bad_input_exits_2_and_writes_nothing(files, tmp_path, capsys, what, message):
    employment = bad_employment(files, tmp_path, what)
    out = tmp_path / "out" / "data.nc"
    out.parent.mkdir()
    args = ("--employment", employment, "--weights", files / "W.gal", "--out", out)
    if what == "negative":  # one case through a fresh interpreter, the others in-process
        proc = run(*args)
        code, stderr = proc.returncode, proc.stderr
    else:
        code, _, stderr = run_inline(capsys, *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert pd.Series(lines).str.contains(message).all(), lines[0]
    assert list(out.parent.iterdir()) == []


def test_covariates_for_unknown_cities_and_islands_are_refused(files, tmp_path, capsys):
    c = pd.read_csv(files / "C.csv")
    c.loc[3, "city"] = "Atlantis"
    c.to_csv(tmp_path / "C.csv", index=False)
    code, _, err = run_inline(capsys, "--employment", files / "E.csv", "--weights",
                              files / "W.gal", "--covariates", tmp_path / "C.csv", "--out",
                              tmp_path / "x.nc")
    assert code == 2 and "C.csv: column city has cities not in the employment " \
                         "table: Atlantis" in err
    # a GAL with an island city and the default island policy 'refuse'
    gal = (files / "W.gal").read_text().splitlines()
    lines, i = [gal[0]], 1
    while i < len(gal):
        city, count = gal[i].split()
        neighbours = gal[i + 1].split()
        keep = [x for x in neighbours if x != "City001"]
        if city == "City001":
            keep = []
        lines += [f"{city} {len(keep)}", " ".join(keep)]
        i += 2
    (tmp_path / "W.gal").write_text("\n".join(lines) + "\n")
    code, _, err = run_inline(capsys, "--employment", files / "E.csv", "--weights",
                              tmp_path / "W.gal", "--out", tmp_path / "x.nc")
    assert code == 2 and "island" in err and "City001" in err
    assert not (tmp_path / "x.nc").exists()


def test_help_and_missing_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        run_inline(capsys, "--help")
    assert stop.value.code == 0 and "--fill-policy" in capsys.readouterr().out
    code, _, err = run_inline(capsys, "--employment", tmp_path / "E.csv", "--out",
                              tmp_path / "x.nc")
    assert code == 2 and err.startswith("error: give --employment and --weights")


def test_er_benchmark_option_reaches_the_dataset(tmp_path, capsys):
    tiny = ROOT / "models" / "study" / "configs" / "tiny"
    out = tmp_path / "national.nc"
    code, stdout, err = run_inline(capsys, "--employment", tiny / "employment.csv", "--weights",
                                   tiny / "map.gal", "--out", out, "--er-benchmark", "national")
    assert code == 0, err
    assert "ER_national" in stdout  # listed among the robustness measures
    ds = load_dataset(out)
    assert '"er_benchmark": "national"' in ds.attrs["choices"]
    np.testing.assert_allclose(ds.ER.values, ds.ER_national.values, equal_nan=True)
    with pytest.raises(SystemExit) as stop:
        run_inline(capsys, "--employment", tiny / "employment.csv", "--weights",
                   tiny / "map.gal", "--out", tmp_path / "x.nc", "--er-benchmark", "regional")
    assert stop.value.code == 2 and "invalid choice: 'regional'" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
