"""A small metrics registry that renders the Prometheus text exposition format (0.0.4).

Counters, gauges and histograms, each with a fixed set of label names; a labelled metric hands
out one child per combination of label values. Everything runs on one event loop, so there is
no locking.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The Prometheus client libraries' default buckets.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """`count` bucket bounds: start, start*factor, start*factor², … (as Prometheus clients)."""
    if start <= 0 or factor <= 1 or count < 1:
        raise ValueError("exponential buckets need start > 0, factor > 1 and count >= 1")
    return tuple(start * factor**i for i in range(count))


class CounterChild:
    """One counter series."""

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter can only go up")
        self.value += amount


class GaugeChild:
    """One gauge series."""

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    """One histogram series: cumulative bucket counts, sum and count."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break


ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


class _Family(ABC, Generic[ChildT]):
    type_name = ""

    def __init__(self, name: str, help: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._children: dict[tuple[str, ...], ChildT] = {}

    @abstractmethod
    def _new_child(self) -> ChildT:
        """A new series of this metric's type."""

    def labels(self, *values: str, **by_name: str) -> ChildT:
        """The series for these label values (positional, or all by name)."""
        key = self._key(values, by_name)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def remove(self, *values: str, **by_name: str) -> None:
        """Drop one series (for example when the object it describes is deleted)."""
        self._children.pop(self._key(values, by_name), None)

    def _key(self, values: tuple[str, ...], by_name: dict[str, str]) -> tuple[str, ...]:
        if values and by_name:
            raise ValueError(f"{self.name}: give label values by position or by name, not both")
        if by_name:
            if set(by_name) != set(self.label_names):
                raise ValueError(
                    f"{self.name}: labels {sorted(by_name)} do not match {list(self.label_names)}"
                )
            values = tuple(by_name[label] for label in self.label_names)
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name}: expected labels {list(self.label_names)}")
        return tuple(str(value) for value in values)

    def _child(self, by_name: dict[str, str]) -> ChildT:
        """The series named by keyword labels, or the only series of an unlabelled metric."""
        if not by_name and self.label_names:
            raise ValueError(f"{self.name}: expected labels {list(self.label_names)}")
        return self.labels(**by_name)

    @abstractmethod
    def samples(self) -> Iterable[str]:
        """The exposition lines of every series."""

    def render(self) -> str:
        lines = [
            f"# HELP {self.name} {_escape_help(self.help)}",
            f"# TYPE {self.name} {self.type_name}",
        ]
        lines.extend(self.samples())
        return "\n".join(lines) + "\n"

    def _labels_text(self, values: tuple[str, ...], extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = [*zip(self.label_names, values, strict=True), *extra]
        if not pairs:
            return ""
        return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


class Counter(_Family[CounterChild]):
    """A value that only goes up (requests served, errors seen)."""

    type_name = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add to the series `labels` name (`c.inc(controller="x")`)."""
        self._child(labels).inc(amount)

    def samples(self) -> Iterable[str]:
        for values, child in self._children.items():
            yield f"{self.name}{self._labels_text(values)} {format_value(child.value)}"


class Gauge(_Family[GaugeChild]):
    """A value that goes up and down (queue depth, busy workers)."""

    type_name = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).dec(amount)

    def samples(self) -> Iterable[str]:
        for values, child in self._children.items():
            yield f"{self.name}{self._labels_text(values)} {format_value(child.value)}"


class Histogram(_Family[HistogramChild]):
    """Observations counted into cumulative buckets (`le`), with their sum and count."""

    type_name = "histogram"

    def __init__(
        self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        if "le" in labels:
            raise ValueError(f"{name}: 'le' is reserved for histogram buckets")
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: duplicate bucket bounds")
        super().__init__(name, help, labels)
        self.bounds = (*bounds, math.inf)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float, **labels: str) -> None:
        """Count `value` into the series `labels` name (`h.observe(0.3, kind="Widget", …)`)."""
        self._child(labels).observe(value)

    def samples(self) -> Iterable[str]:
        for values, child in self._children.items():
            cumulative = 0
            for bound, count in zip(self.bounds, child.counts, strict=True):
                cumulative += count
                le = (("le", format_value(bound)),)
                yield f"{self.name}_bucket{self._labels_text(values, le)} {cumulative}"
            yield f"{self.name}_sum{self._labels_text(values)} {format_value(child.sum)}"
            yield f"{self.name}_count{self._labels_text(values)} {child.count}"


_AnyFamily = Counter | Gauge | Histogram
FamilyT = TypeVar("FamilyT", Counter, Gauge, Histogram)


class Metrics:
    """A registry of metric families, rendered together for a `/metrics` endpoint.

    Asking twice for the same name returns the same family (so several controllers can share
    one registry), provided the type and label names agree.
    """

    def __init__(self) -> None:
        self._families: dict[str, _AnyFamily] = {}
        self._collectors: list[Callable[[], None]] = []

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self._register(Counter, name, labels, lambda: Counter(name, help, labels))

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return self._register(Gauge, name, labels, lambda: Gauge(name, help, labels))

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._register(
            Histogram, name, labels, lambda: Histogram(name, help, labels, buckets)
        )

    def on_collect(self, callback: Callable[[], None]) -> None:
        """Run `callback` before each render, to set gauges that are only read when scraped."""
        self._collectors.append(callback)

    def get(self, name: str) -> Counter | Gauge | Histogram | None:
        return self._families.get(name)

    def render(self) -> str:
        """All families in the text exposition format, version 0.0.4."""
        for collect in self._collectors:
            collect()
        return "".join(family.render() for family in self._families.values())

    def _register(
        self,
        cls: type[FamilyT],
        name: str,
        labels: Sequence[str],
        make: Callable[[], FamilyT],
    ) -> FamilyT:
        _check_name(name)
        for label in labels:
            _check_name(label, label=True)
        existing = self._families.get(name)
        if existing is None:
            family = make()
            self._families[name] = family
            return family
        if not isinstance(existing, cls) or existing.label_names != tuple(labels):
            raise ValueError(
                f"metric {name} is already registered as a {existing.type_name} "
                f"with labels {list(existing.label_names)}"
            )
        return existing


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, integers without `.0`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _check_name(name: str, *, label: bool = False) -> None:
    allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_" + ("" if label else ":")
    valid = (
        bool(name)
        and name[0] in allowed
        and all(c in allowed or c in "0123456789" for c in name)
        and not (label and name.startswith("__"))
    )
    if not valid:
        raise ValueError(f"invalid {'label' if label else 'metric'} name {name!r}")
