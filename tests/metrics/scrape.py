"""Reading a /metrics page as Prometheus would: samples by name and labels, summed at will."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """Every sample of one or more scrapes (a deployment's processes, added up)."""

    samples: tuple[Sample, ...]
    text: str = ""

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def series(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def __add__(self, other: Scrape) -> Scrape:
        return Scrape(self.samples + other.samples, self.text + other.text)


def parse(text: str) -> Scrape:
    samples = tuple(
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    )
    return Scrape(samples, text)


def scrape(url: str, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def scrape_all(urls: Iterable[str]) -> Scrape:
    total = Scrape(())
    for url in urls:
        total = total + scrape(url)
    return total
