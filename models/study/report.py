"""The study report (``report.md``): what was run, a verdict per table, every table and figure
with one sentence on what it shows, and the versions, seeds and run time at the end."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata

import pandas as pd

from models.spec.coefficient_tables import to_markdown

PACKAGES = ("numpy", "scipy", "pandas", "xarray", "pymc", "pytensor", "nutpie", "arviz",
            "libpysal", "esda", "formulaic")


def versions() -> dict[str, str]:
    """Python and the versions of the packages the results depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class Report:
    """Markdown sections collected while the study runs; :meth:`render` assembles the file."""

    title: str = "Study report"
    preamble: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def section(self, title: str, sentence: str = "") -> None:
        self.body += [f"## {title}", ""] + ([sentence, ""] if sentence else [])

    def table(self, frame: pd.DataFrame, title: str, sentence: str, note: str | None = None,
              file: str | None = None) -> None:
        self.body += [f"### {title}", "", sentence + (f" (`{file}`)" if file else ""), "",
                      to_markdown(frame, note), ""]

    def figure(self, path: str, caption: str) -> None:
        self.body += [f"![{caption}]({path})", "", f"*{caption}*", ""]

    def lines(self, lines) -> None:
        self.body += [*lines, ""]

    def verdict(self, text: str) -> None:
        self.verdicts.append(text)

    def render(self, seeds: dict[str, int], extra: dict[str, str] | None = None) -> str:
        total = time.perf_counter() - self.started
        out = [f"# {self.title}", "", *self.preamble, ""]
        if self.verdicts:
            out += ["## Verdicts", ""] + [f"* {v}" for v in self.verdicts] + [""]
        out += self.body
        out += ["## Reproducibility", "", "| what | value |", "|:---|---:|"]
        out += [f"| {k} | {v} |" for k, v in {**(extra or {}), **{f"seed ({k})": v
                                                                for k, v in seeds.items()},
                                              **versions()}.items()]
        out += ["", "| stage | seconds |", "|:---|---:|"]
        out += [f"| {label} | {sec:.1f} |" for label, sec in self.timings]
        out += [f"| total | {total:.1f} |", ""]
        return "\n".join(out) + "\n"
