"""The best weights seen at validation, and early stopping: what every fine-tuning loop keeps.

A fine-tune on a plant's short history overfits within a few hundred steps, so each loop
(the univariate model's :mod:`.finetune`, the asset model's :mod:`.asset_finetune` and its
whole-days variant :mod:`.asset_finetune_days`) scores the weights on held-back validation
every few steps, keeps a copy of the trainable weights that scored lowest, stops after
``patience`` validations without improvement and puts the kept weights back before saving.

>>> import torch
>>> layer = torch.nn.Linear(1, 1)
>>> keep = KeepBest(layer, "loss", patience=2)
>>> keep.offer(0, {"loss": 1.0}), keep.offer(5, {"loss": 0.5}), keep.offer(10, {"loss": 0.7})
(False, False, False)
>>> keep.offer(15, {"loss": 0.6}), keep.step, keep.best["loss"]
(True, 5, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

TOLERANCE = 1e-9
"""A score must beat the best by more than this to count as better (float noise is not progress)."""


class KeepBest:
    """Keeps the trainable weights of ``model`` that scored lowest on ``key``; counts validations since."""

    def __init__(self, model: torch.nn.Module, key: str, patience: int) -> None:
        self.model = model
        self.key = key
        self.patience = patience
        self.best: dict[str, Any] = {}
        """The scores of the kept weights (empty before the first offer)."""
        self.step = 0
        """The step at which the kept weights were scored (0: the base model's)."""
        self.since = 0
        """Validations since the kept weights."""
        self._state: dict[str, torch.Tensor] = {}
        self._first: tuple[int, dict[str, Any], dict[str, torch.Tensor]] | None = None

    def offer(self, step: int, scores: Mapping[str, Any]) -> bool:
        """Keep the current weights if ``scores[key]`` is the lowest yet; True when patience has run out."""
        if not self.best or scores[self.key] < self.best[self.key] - TOLERANCE:
            self.best, self.step, self.since = dict(scores), step, 0
            self._state = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            if self._first is None:
                self._first = (step, self.best, self._state)
        else:
            self.since += 1
        return self.since >= self.patience

    def restore(self) -> None:
        """Put the kept weights back into the model."""
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in self._state:
                    p.copy_(self._state[name])

    def revert_to_first(self) -> None:
        """Keep the first weights offered instead (a fine-tune's base model: the acceptance gate's no-op).

        ``best`` and ``step`` become the first offer's; the model gets its weights back.
        Does nothing before the first offer.
        """
        if self._first is not None:
            self.step, self.best, self._state = self._first[0], dict(self._first[1]), self._first[2]
            self.restore()
