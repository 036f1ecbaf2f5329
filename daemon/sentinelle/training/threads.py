"""Torch's CPU thread count around one training run.

Each training entry point (pretraining, the univariate and the asset model's fine-tunes) sets torch's
thread count from its settings for the run; whoever called it (the CLI, a test, an evaluation that
trains between replays) gets its own count back however the run ends, so one run's setting never
leaks into the next.

>>> before = torch.get_num_threads()
>>> with torch_threads_restored():
...     torch.set_num_threads(1)
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads_restored() -> Iterator[None]:
    """Run the block, then put torch's CPU thread count back as it was (also when the block raises)."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
