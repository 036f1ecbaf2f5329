"""A training run's torch thread count does not outlive it (``training/threads.py``)."""

from __future__ import annotations

import pytest
import torch

from sentinelle.training.threads import torch_threads_restored


def test_thread_count_comes_back_after_a_run_that_raises() -> None:
    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    try:
        with pytest.raises(RuntimeError, match="run failed"), torch_threads_restored():
            torch.set_num_threads(other)
            assert torch.get_num_threads() == other
            raise RuntimeError("run failed")
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
