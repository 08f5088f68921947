"""Measurement of what a block of work costs: wall seconds and the peak of resident memory.

    with measure() as cost:
        kb.add(docs)
    cost.seconds, cost.peak_rss_increase      # 0.84, 52_428_800

RSS counts everything the process holds (torch, numpy, an embedder's weights when first
loaded), which tracemalloc would miss; a thread samples it every `interval` seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Usage", "measure", "rss_bytes", "timing"]


def rss_bytes() -> int | None:
    """The process's resident set size in bytes, or None where it cannot be read."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


@dataclass
class Usage:
    """What one measured block cost: wall seconds and the peak rise of the process's RSS."""

    seconds: float = 0.0
    peak_rss_increase: int | None = None
    peak_rss: int | None = None


@contextmanager
def measure(interval: float = 0.01) -> Iterator[Usage]:
    """Time a block and sample the process's resident memory in a thread every `interval` s.

    The Usage it yields is filled in when the block ends (also when it raises).
    """
    usage = Usage()
    start_rss = rss_bytes()
    peak = [start_rss or 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            rss = rss_bytes()
            if rss is not None and rss > peak[0]:
                peak[0] = rss

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    try:
        yield usage
    finally:
        usage.seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        end = rss_bytes()
        if start_rss is not None and end is not None:
            usage.peak_rss = max(peak[0], end)
            usage.peak_rss_increase = usage.peak_rss - start_rss


def timing(answer: object, name: str) -> float | int | None:
    """One of an Answer's timings (total_ms, first_token_ms, prompt_tokens, ...), or None;
    reads a dict of timings and a typed timings object alike."""
    timings = getattr(answer, "timings", None)
    if timings is None:
        return None
    if isinstance(timings, dict):
        return timings.get(name)
    return getattr(timings, name, None)
