"""Which failures a call may retry, and how long to wait between attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import ConcurrentModification, PipelineJobsError, ServiceUnavailable


@dataclass(frozen=True)
class RetryPolicy:
    """Retry ``UNAVAILABLE`` (and lost compare-and-set races) with jittered exponential backoff.

    Safe for every RPC of the service: reads change nothing, registrations and job creation are
    idempotent by identity, and every event carries an idempotency key.
    """

    attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def retryable(self, error: PipelineJobsError) -> bool:
        return isinstance(error, ServiceUnavailable | ConcurrentModification)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


NO_RETRY = RetryPolicy(attempts=1)
