"""Latency histograms that client processes fill and the harness merges.

Buckets are 0.25 ms wide up to 1 s, then 10 ms wide up to 60 s (everything slower lands
in the last bucket), so a histogram stays small enough to send as JSON whatever the
number of positions, and percentiles are exact to the bucket.
"""

from __future__ import annotations

from collections.abc import Iterable

FINE_MS = 0.25
FINE_LIMIT_MS = 1000.0
COARSE_MS = 10.0
_FINE_BUCKETS = int(FINE_LIMIT_MS / FINE_MS)
_LAST_BUCKET = _FINE_BUCKETS + int((60_000.0 - FINE_LIMIT_MS) / COARSE_MS)


def bucket_of(latency_ms: float) -> int:
    if latency_ms < FINE_LIMIT_MS:
        return max(int(latency_ms / FINE_MS), 0)
    return min(_FINE_BUCKETS + int((latency_ms - FINE_LIMIT_MS) / COARSE_MS), _LAST_BUCKET)


def upper_bound_ms(bucket: int) -> float:
    """The largest latency a bucket holds: percentiles err on the slow side."""
    if bucket < _FINE_BUCKETS:
        return (bucket + 1) * FINE_MS
    return FINE_LIMIT_MS + (bucket - _FINE_BUCKETS + 1) * COARSE_MS


class Histogram:
    """Counts of latencies per bucket."""

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})

    def add(self, latency_ms: float, count: int = 1) -> None:
        bucket = bucket_of(latency_ms)
        self.counts[bucket] = self.counts.get(bucket, 0) + count

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Histogram) -> None:
        for bucket, count in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + count

    def percentile(self, fraction: float) -> float | None:
        """The latency (ms) under which ``fraction`` of the samples fall; None if empty."""
        total = self.total
        if total == 0:
            return None
        rank = fraction * total
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return upper_bound_ms(bucket)
        return upper_bound_ms(max(self.counts))

    def to_json(self) -> dict[str, int]:
        return {str(bucket): count for bucket, count in self.counts.items()}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> Histogram:
        return cls({int(bucket): count for bucket, count in data.items()})

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        result = cls()
        for histogram in histograms:
            result.merge(histogram)
        return result
