"""Pretraining: a tiny model on a tiny corpus trains, writes its checkpoint, learns, and is reproducible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentinelle.cli import EXIT_CONFIG, EXIT_OK, main
from sentinelle.errors import ConfigError
from sentinelle.forecast.model import SentinelleTSModel
from sentinelle.training.corpus import Corpus
from sentinelle.training.pretrain_settings import (
    CorpusMix,
    CorpusSettings,
    ModelSizeSettings,
    PretrainSettings,
    TrainSettings,
    load_pretrain_settings,
)
from sentinelle.training.train import pretrain

TINY_MODEL = {
    "context_length": 64,
    "patch_length": 8,
    "horizon": 16,
    "d_model": 32,
    "num_layers": 1,
    "num_heads": 2,
    "d_ff": 64,
    "vocab_size": 256,
    "analog_window": 8,
}
TINY_MIX = {"kernel_synth": 1.0, "industrial": 1.0, "chiller": 0.0, "real": 0.0, "seasonal": 1.0}
TINY_CORPUS = {
    "seasonal_series": 40,
    "seasonal_length": 256,
    "kernel_synth_series": 40,
    "kernel_synth_length": 256,
    "industrial_series": 40,
    "industrial_length": 256,
    "min_context_steps": 8,
}


def _settings(out_dir: Path, **train: Any) -> PretrainSettings:
    base: dict[str, Any] = {
        "steps": 30,
        "batch_size": 16,
        "warmup_steps": 5,
        "learning_rate": 3e-3,
        "eval_every_steps": 10,
        "validation_windows": 64,
        "out_dir": out_dir,
        "device": "cpu",
        # One thread: on a shared 2-core machine an OpenMP barrier waiting for a descheduled
        # second thread made these 30 steps take seconds instead of a fraction of one.
        "cpu_threads": 1,
    }
    base.update(train)
    return PretrainSettings(
        model=ModelSizeSettings.model_validate(TINY_MODEL),
        corpus=CorpusSettings.model_validate({**TINY_CORPUS, "mix": CorpusMix.model_validate(TINY_MIX)}),
        train=TrainSettings(**base),
    )


@pytest.fixture(scope="module")
def tiny_corpus() -> Corpus:
    s = _settings(Path("unused"))
    return Corpus.build(s.corpus, context_length=s.model.context_length, horizon=s.model.horizon)


def test_thirty_steps_train_save_and_learn(tmp_path: Path, tiny_corpus: Corpus) -> None:
    result = pretrain(_settings(tmp_path / "run"), progress=False, corpus=tiny_corpus)
    assert result.steps == 30 and result.stopped_by == "steps"
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "model.safetensors", "training.json"} <= files
    steps = [h["step"] for h in result.history]
    assert steps == [0, 10, 20, 30]
    first, last = result.history[0]["pinball"], result.history[-1]["pinball"]
    assert last < first, f"validation pinball did not fall: {first} -> {last}"
    assert result.best_validation["pinball"] <= last

    report = json.loads((tmp_path / "run" / "training.json").read_text())
    assert report["steps"] == 30 and report["seed"] == 0 and report["best_step"] == result.best_step
    assert report["model_config"]["patch_length"] == 8
    assert report["held_out"]["electricity_fr"].startswith("days from 2014-10-31")
    assert len(report["validation_history"]) == 4 and report["device"].startswith("cpu")
    assert report["corpus"]["sources"]["kernel_synth"]["series"] == 40

    # The saved checkpoint is the best one and loads as a model.
    model = SentinelleTSModel.from_pretrained(tmp_path / "run")
    assert model.config.horizon == 16


def test_same_seed_same_losses(tmp_path: Path, tiny_corpus: Corpus) -> None:
    a = pretrain(_settings(tmp_path / "a", steps=10, eval_every_steps=5), progress=False, corpus=tiny_corpus)
    b = pretrain(_settings(tmp_path / "b", steps=10, eval_every_steps=5), progress=False, corpus=tiny_corpus)
    assert [h["pinball"] for h in a.history] == [h["pinball"] for h in b.history]
    c = pretrain(_settings(tmp_path / "c", steps=10, eval_every_steps=5, seed=1), progress=False, corpus=tiny_corpus)
    assert [h["pinball"] for h in c.history] != [h["pinball"] for h in a.history]


def test_time_budget_stops_and_keeps_the_best(tmp_path: Path, tiny_corpus: Corpus) -> None:
    # A budget already spent by the first validation: no step is taken, the step-0 model is kept.
    result = pretrain(_settings(tmp_path / "t", max_minutes=1e-6), progress=False, corpus=tiny_corpus)
    assert result.stopped_by == "time_budget" and result.steps == 0
    assert (tmp_path / "t" / "model.safetensors").is_file()


def test_continued_pretraining_starts_from_a_checkpoint(tmp_path: Path, tiny_corpus: Corpus) -> None:
    s = _settings(tmp_path / "a", steps=10, eval_every_steps=10)
    s = s.model_copy(update={"model": s.model.model_copy(update={"analog_window": 0})})
    first = pretrain(s, progress=False, corpus=tiny_corpus)
    # Same shape plus the analog branch: the old weights carry over, the branch starts fresh.
    s = _settings(tmp_path / "b", steps=10, eval_every_steps=10, init_from=tmp_path / "a")
    second = pretrain(s, progress=False, corpus=tiny_corpus)
    assert second.history[0]["pinball"] < first.history[0]["pinball"], "step 0 should start where the first run ended"
    model = SentinelleTSModel.from_pretrained(tmp_path / "b")
    assert model.analog is not None and model.config.analog_window == 8
    # A checkpoint of another shape is refused by name.
    wrong = _settings(tmp_path / "c", steps=1, init_from=tmp_path / "b")
    wrong = wrong.model_copy(update={"model": wrong.model.model_copy(update={"d_ff": 32})})
    with pytest.raises(ValueError, match="d_ff"):
        pretrain(wrong, progress=False, corpus=tiny_corpus)


def test_config_file_documents_the_defaults() -> None:
    path = Path(__file__).resolve().parents[2] / "config" / "pretrain.toml"
    assert load_pretrain_settings(path) == PretrainSettings()


def test_bad_config_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nstepz = 3\n")
    with pytest.raises(ConfigError, match=r"train\.stepz"):
        load_pretrain_settings(bad)
    bad.write_text("[model]\ncontext_length = 100\npatch_length = 16\n")
    with pytest.raises(ConfigError, match="multiple of patch_length"):
        load_pretrain_settings(bad)
    assert main(["pretrain", "--config", str(bad)]) == EXIT_CONFIG


def test_cli_pretrain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["[model]", *(f"{k} = {v}" for k, v in TINY_MODEL.items()), "[corpus]"]
    lines += [f"{k} = {v}" for k, v in TINY_CORPUS.items()]
    lines += ["[corpus.mix]", *(f"{k} = {v}" for k, v in TINY_MIX.items())]
    lines += ["[train]", "batch_size = 8", "validation_windows = 16", 'device = "cpu"', "cpu_threads = 1"]
    config = tmp_path / "pretrain.toml"
    config.write_text("\n".join(lines) + "\n")
    code = main(["pretrain", "--config", str(config), "--out", str(tmp_path / "cli"), "--steps", "3", "--no-progress"])
    assert code == EXIT_OK
    assert "for 3 steps" in capsys.readouterr().out
    report = json.loads((tmp_path / "cli" / "training.json").read_text())
    assert report["steps"] == 3 and np.isfinite(report["best_validation"]["pinball"])


def test_validation_pinball_is_the_training_loss() -> None:
    """The logged validation pinball must be the model's own loss, or curves and checkpoints disagree."""
    from sentinelle.forecast.model import pinball_loss
    from sentinelle.forecast.tokenizer import TSTokenizer
    from sentinelle.training.corpus import Windows
    from sentinelle.training.validation import validation_metrics, validation_set

    rng = np.random.default_rng(0)
    levels = (0.1, 0.5, 0.9)
    context = rng.normal(size=(6, 32))
    target = rng.normal(size=(6, 8))
    target[1, 3] = np.nan
    data = validation_set(Windows(context, target, np.zeros(6, dtype=np.int64)), TSTokenizer(256, 15.0), 50.0)
    q = np.sort(rng.normal(size=(6, 3, 8)), axis=1)
    expected = float(pinball_loss(torch.from_numpy(q), torch.from_numpy(data.labels), levels))
    assert validation_metrics(q, data, levels)["pinball"] == pytest.approx(expected, rel=1e-5)


def test_command_line_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_PRETRAIN_TRAIN__STEPS", "7")
    monkeypatch.setenv("SENTINELLE_PRETRAIN_TRAIN__BATCH_SIZE", "9")
    settings = load_pretrain_settings(None, train={"steps": 3})
    assert (settings.train.steps, settings.train.batch_size) == (3, 9)
    with pytest.raises(ConfigError, match=r"train\.steps"):
        load_pretrain_settings(None, train={"steps": 0})


def test_prefetch_keeps_order_passes_errors_and_closes() -> None:
    """The GPU path's batch thread (the CPU path prepares batches inline)."""
    from collections.abc import Iterator

    from sentinelle.training.batches import Batch, PrefetchedBatches

    def items(fail_at: int) -> Iterator[Batch]:
        for i in range(100):
            if i == fail_at:
                raise RuntimeError("corpus broke")
            yield Batch(ids=torch.tensor([i]), labels=torch.tensor([float(i)]))

    prefetch = PrefetchedBatches(items(fail_at=-1), depth=2)
    assert [int(next(prefetch).ids) for _ in range(10)] == list(range(10))
    prefetch.close()
    failing = PrefetchedBatches(items(fail_at=3), depth=2)
    assert [int(next(failing).ids) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="corpus broke"):
        next(failing)
    failing.close()
