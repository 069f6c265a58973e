"""A token bucket (pure: the caller passes the clock)."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.level = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Take one token; False when the bucket is empty (the request is over the rate)."""
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate_per_s)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False
