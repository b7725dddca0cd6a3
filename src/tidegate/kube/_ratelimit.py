"""Client-side request rate limiting, as client-go's token bucket (`flowcontrol`)."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """Allow `qps` requests per second on average and bursts of up to `burst`.

    Flux's controllers default to 50 QPS with a burst of 100 (`--kube-api-qps`,
    `--kube-api-burst`); so does tidegate. A `qps` of 0 or less disables limiting.
    """

    def __init__(self, qps: float = 50.0, burst: int = 100) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
        self._stamp = now

    async def acquire(self) -> None:
        """Wait until a request may be sent."""
        if self.qps <= 0:
            return
        # The lock keeps waiters in arrival order, so a burst drains fairly.
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.qps)
                self._refill()
            self._tokens -= 1
