"""Demo robustness inputs (data_prep.synthetic.output) and prepare_data --output end to end:
GDP, industry output and regions; ER_GDP, PSS_output and PSD_gini in the demo Dataset with
sensible ranges and the expected agreement with ER and PSS; bad output files rejected with a
one-line error and nothing written."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep import indices as ix
from data_prep.dataset import cross_section, demo_dataset, load_dataset
from data_prep.readers import read_employment, read_output
from data_prep.synthetic.demo import demo_inputs
from data_prep.synthetic.output import REGIONS, demo_output, regions_from_coordinates, with_output
from tests.fixtures import run_main, write_demo_files

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "prepare_data.py"


@pytest.fixture(scope="module")
def demo():
    return demo_inputs()


@pytest.fixture(scope="module")
def extra(demo):
    return demo_output(demo)


@pytest.fixture(scope="module")
def ds():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return demo_dataset()


def test_output_gdp_and_regions_tables(demo, extra):
    out, gdp = extra.output, extra.gdp
    assert list(out.columns) == ["city", "year", "industry", "output"]
    pd.testing.assert_frame_equal(out[["city", "year", "industry"]],
                                  demo.employment[["city", "year", "industry"]])
    assert (out.output > 0).all()
    # GDP is the sum of the industries' value added, exactly
    total = out.groupby(["city", "year"])["output"].sum()
    np.testing.assert_allclose(gdp.set_index(["city", "year"])["GDP"].loc[total.index], total,
                               rtol=1e-12)
    # plausible sizes in 100 million yuan and national nominal growth of a few per cent
    first = gdp[gdp.year == gdp.year.min()].GDP
    assert 100 < first.median() < 5000 and first.min() > 1
    national = gdp.groupby("year").GDP.sum()
    growth = (national / national.shift(1) - 1).dropna()
    assert 0.02 < growth.median() < 0.15 and growth.max() < 0.3
    # same demo, same tables
    again = demo_output(demo)
    pd.testing.assert_frame_equal(again.output, out)
    pd.testing.assert_frame_equal(again.regions, extra.regions)


def test_regions_follow_the_documented_rule(demo, extra):
    reg = extra.regions.merge(demo.cities[["city", "x", "y"]], on="city")
    counts = reg.region.value_counts()
    assert set(counts.index) == set(REGIONS) and counts.min() >= 15
    u = (reg.x - reg.x.min()) / (reg.x.max() - reg.x.min())
    v = (reg.y - reg.y.min()) / (reg.y.max() - reg.y.min())
    assert (u[reg.region == "West"] < 0.35).all() and (u[reg.region == "East"] >= 0.6).all()
    assert ((v[reg.region == "Northeast"] >= 0.68) & (u[reg.region == "Northeast"] >= 0.6)).all()
    assert ((u[reg.region == "Central"] >= 0.35) & (u[reg.region == "Central"] < 0.6)).all()
    # the corners of a square
    np.testing.assert_array_equal(regions_from_coordinates([0, 10, 10, 0, 5], [0, 0, 10, 10, 0]),
                                  ["West", "East", "Northeast", "West", "Central"])


def test_with_output_adds_gdp_and_region_only(demo):
    augmented, output = with_output(demo)
    assert list(augmented.covariates.columns) == list(demo.covariates.columns) + ["GDP"]
    assert list(augmented.cities.columns) == list(demo.cities.columns) + ["region"]
    pd.testing.assert_frame_equal(augmented.employment, demo.employment)
    assert augmented.choices["output_unit"].startswith("100 million yuan")
    assert "output_unit" not in demo.choices  # the original demo is untouched


def test_demo_dataset_has_the_robustness_measures(ds, demo, extra):
    for name in ("GDP", "ER_GDP", "PSS_output", "PSD_gini", "region"):
        assert name in ds, name
    assert ds.region.dims == ("city",) and set(ds.region.values) == set(REGIONS)
    last = ds.year.values.max()
    assert ds.ER_GDP.sel(year=last).isnull().all()
    defined = ds.ER_GDP.sel(year=ds.year.values[:-1])
    # excess growth is bounded: the demo's largest yearly ER (about ±12) moves a city's
    # employment, hence its GDP, by at most some tens of per cent against the nation
    assert defined.notnull().all() and float(abs(defined).max()) < 1.0
    assert float(ds.PSS_output.min()) >= 1.0 - 1e-12  # the largest LQ is at least 1
    assert float(ds.PSS_output.max()) < 50
    assert float(ds.PSD_gini.min()) > 0 and float(ds.PSD_gini.max()) <= 1.0
    # the stored PSS_output is the output LQ of the demo's output table
    Y = read_output(extra.output, read_employment(demo.employment))
    np.testing.assert_allclose(ds.PSS_output.values,
                               ix.output_specialisation(Y).sel(city=ds.city).values)

    # sanity: the alternative measures agree with the main ones across cities (period means;
    # measured with the default seed: ER_GDP vs ER 0.97, PSS_output vs PSS 0.93)
    cs = cross_section(ds, ["ER", "ER_GDP", "PSS", "PSS_output", "PSD", "PSD_gini"])
    corr = cs.drop(columns="city").corr()
    assert corr.loc["ER", "ER_GDP"] > 0.5
    assert corr.loc["PSS", "PSS_output"] > 0.5
    assert corr.loc["PSD", "PSD_gini"] > 0.5
    # PSS_output is not PSS with a new name: localisation economies and noise move it
    assert corr.loc["PSS", "PSS_output"] < 0.999


# ----------------------------------------------------------------------------- prepare_data

def run_inline(capsys, *args) -> tuple[int, str, str]:
    return run_main(capsys, "prepare_data", *args)


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory):
    augmented, output = with_output(demo)
    return write_demo_files(tmp_path_factory.mktemp("inputs"), augmented, output)


def test_prepare_data_with_output_end_to_end(files, tmp_path, ds):
    out = tmp_path / "study.nc"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--employment", files / "E.csv",
                           "--weights", files / "W.gal", "--covariates", files / "C.csv",
                           "--cities", files / "K.csv", "--output", files / "O.csv",
                           "--out", out], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    measures = proc.stdout.split("Robustness measures: ")[1].split(".")[0].split(", ")
    assert {"ER_GDP", "PSS_output", "PSD_gini"} <= set(measures)
    back = load_dataset(out)
    assert "O.csv" in back.attrs["source_files"]
    for name in ("ER_GDP", "PSS_output", "PSD_gini"):
        # the files keep 4 decimals, as the demo's own tables do
        np.testing.assert_allclose(back[name].values, ds[name].sel(city=back.city).values,
                                   rtol=1e-9, equal_nan=True)
    assert list(back.region.sel(city=["City001"]).values) == \
        list(ds.region.sel(city=["City001"]).values)


@pytest.mark.parametrize("what, message", [
    ("missing column", r"O\.csv: missing column\(s\) output"),
    ("negative", r"O\.csv: column output is negative in lines 9 \(cities City001\)"),
    ("unknown city", r"O\.csv: column city has cities not in the employment table: Atlantis"),
    ("non-numeric", r"O\.csv: column output is not numeric in lines 4 \(values 12k\)"),
])
def test_bad_output_file_exits_2_and_writes_nothing(files, tmp_path, capsys, what, message):
    o = pd.read_csv(files / "O.csv")
    if what == "missing column":
        o = o.rename(columns={"output": "value"})
    elif what == "negative":
        o.loc[7, "output"] = -3.0
    elif what == "unknown city":
        o.loc[o.city == "City005", "city"] = "Atlantis"
    else:
        o["output"] = o["output"].astype(object)
        o.loc[2, "output"] = "12k"
    o.to_csv(tmp_path / "O.csv", index=False)
    target = tmp_path / "out"
    target.mkdir()
    code, stdout, stderr = run_inline(capsys, "--employment", files / "E.csv", "--weights",
                                      files / "W.gal", "--output", tmp_path / "O.csv",
                                      "--out", target / "x.nc")
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert pd.Series(lines).str.contains(message).all(), lines[0]
    assert list(target.iterdir()) == []


def test_demo_refuses_an_output_file(files, tmp_path, capsys):
    code, _, err = run_inline(capsys, "--demo", "--output", files / "O.csv", "--out",
                              tmp_path / "x.nc")
    assert code == 2 and "do not combine it with" in err and "--output" in err
    assert not (tmp_path / "x.nc").exists()
