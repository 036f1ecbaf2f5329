"""The pretraining loop's supply of batches: corpus windows → token ids and scaled, clipped labels.

Apart from :mod:`.train` (the loop, its schedule, checkpoints and report) because it is the one part
with a thread of its own: on CUDA the next batches are prepared on a background thread while the
GPU trains (:class:`PrefetchedBatches`); on the CPU they are prepared inline (:class:`InlineBatches`).
Both give the same batches in the same order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..forecast.tokenizer import TSTokenizer
from .corpus import Corpus

__all__ = ["Batch", "InlineBatches", "PrefetchedBatches", "prepared_batches"]


@dataclass(frozen=True, slots=True)
class Batch:
    """A training batch ready for the model: token ids and scaled, clipped labels."""

    ids: torch.Tensor
    labels: torch.Tensor


def prepared_batches(
    corpus: Corpus, tokenizer: TSTokenizer, batch_size: int, seed: int, label_clip: float
) -> Iterator[Batch]:
    for windows in corpus.batches(batch_size, seed):
        encoded = tokenizer.encode(windows.context)
        labels = np.clip(tokenizer.scale_values(windows.target, encoded.loc, encoded.scale), -label_clip, label_clip)
        yield Batch(
            ids=torch.from_numpy(encoded.ids),
            labels=torch.from_numpy(labels.astype(np.float32)),
        )


class InlineBatches:
    """Batches prepared on demand in the training thread (the CPU path)."""

    def __init__(self, source: Iterator[Batch]) -> None:
        self._source = source

    def __next__(self) -> Batch:
        return next(self._source)

    def close(self) -> None:
        pass


class PrefetchedBatches:
    """Prepare batches on one background thread while the model trains on the previous one.

    One producer consuming one seeded iterator in order keeps the stream
    deterministic; numpy releases the GIL in its heavy parts, so this overlaps
    the corpus and tokenizer with a GPU step.
    """

    def __init__(self, source: Iterator[Batch], depth: int) -> None:
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="pretrain-batches", daemon=True)
        self._thread.start()

    def _run(self, source: Iterator[Batch]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as e:  # surfaced in the training thread by __next__
            self._put(e)

    def _put(self, item: Batch | BaseException) -> bool:
        """Wait for room, but give up when closed (False)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> Batch:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
