"""Reading a running gateway's /metrics the way Prometheus does: over HTTP, parsed by prometheus_client."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    """One scrape: every sample by name and labels, and the families with their label names."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[Sample, float] = {}
        #: family name (as exposed, with _total) -> the label names its samples carry
        self.labels: dict[str, set[str]] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
                self.labels.setdefault(sample.name, set()).update(sample.labels)
            self.types[family.name] = family.type

    @property
    def names(self) -> set[str]:
        """Every sample name exposed (counters with _total, histograms with _bucket, _sum, _count)."""
        return set(self.labels)

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def by(self, name: str, label: str) -> dict[str, float]:
        """The samples of ``name`` summed by one label."""
        out: dict[str, float] = {}
        for (n, ls), v in self.samples.items():
            if n == name:
                key = dict(ls).get(label, "")
                out[key] = out.get(key, 0.0) + v
        return out


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.total(name, **labels) - before.total(name, **labels)


def moved(before: Scrape, after: Scrape, name: str, label: str) -> Mapping[str, float]:
    """How much each value of ``label`` moved between two scrapes (only those that moved)."""
    a, b = before.by(name, label), after.by(name, label)
    return {key: b[key] - a.get(key, 0.0) for key in b if b[key] != a.get(key, 0.0)}


async def scrape(session: aiohttp.ClientSession, port: int) -> Scrape:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(await response.text())
