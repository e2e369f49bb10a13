"""Reading `/metrics` in tests: with prometheus-client's own parser, as samples to compare."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import tickets.metrics
from ivr.metrics import counters

Samples = dict[tuple[str, frozenset], float]


def parse_samples(text: str) -> Samples:
    """Parse an exposition with the client's parser; return every sample by name and labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def exposed_names(text: str) -> set[str]:
    """Return every sample name an exposition can carry, also of families without samples yet."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "summary": ("_count", "_sum"),
    }
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def value(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def empty_metrics() -> None:
    """Empty every metric object of ours, which live as long as the test process.

    Earlier tests leave sums with fractions in them (waits timed on the wall clock), and
    `(sum + x) - sum` is not always `x` in floating point: a test measures from zero instead.
    """
    for module in (counters, tickets.metrics):
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                metric.clear()


class Scraper:
    """Scrape `/metrics` through a Flask test client and tell how samples moved since a mark."""

    def __init__(self, client) -> None:
        self.client = client
        self.before: Samples = {}

    def scrape(self, **request) -> Samples:
        response = self.client.get("/metrics", **request)
        assert response.status_code == 200, response.get_data(as_text=True)
        return parse_samples(response.get_data(as_text=True))

    def mark(self) -> Scraper:
        """Empty our metric objects and remember the values now (the state gauges stay)."""
        empty_metrics()
        self.before = self.scrape()
        return self

    def moved(self, name: str, **labels: str) -> float:
        """Return how much a sample grew since the mark."""
        return value(self.scrape(), name, **labels) - value(self.before, name, **labels)
