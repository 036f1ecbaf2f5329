"""The asset model (forecast/asset_model.py): shapes, G = 1 is the univariate model, masking, save/load, size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.asset_model import GroupAttention, SentinelleAssetModel
from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSModel

from .model_helpers import in_eval_mode, like_trained

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "starter_reference_quantiles.npz"
"""Three windows' token ids and the shipped checkpoint's quantiles for them, computed before the
asset model existed (the model code before the refactor that shares its blocks)."""


def assert_as_reference(q: np.ndarray, expected: np.ndarray) -> None:
    """Equal to the reference to float32 rounding (scaled space): the analog branch's distances are
    summed in another order since the speed work of issue 14 (differences ≤ 5e-7 there)."""
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=2e-6)


SIZE_BUDGET_BYTES = 25_000_000


def small(**extra: object) -> SentinelleAssetModel:
    torch.manual_seed(0)
    config = SentinelleTSConfig(
        context_length=64,
        patch_length=16,
        horizon=8,
        d_model=16,
        num_layers=2,
        num_heads=2,
        d_ff=32,
        vocab_size=256,
        dropout=0.0,
        analog_window=8,
        smoothing_max_period=8,
        smoothing_window=32,
        group_attention=True,
        regression_half_life=32,
        **extra,  # type: ignore[arg-type]
    )
    model = in_eval_mode(like_trained(SentinelleAssetModel(config)))
    with torch.no_grad():
        assert model.regression is not None
        model.regression.gate.bias.fill_(0.0)
    return model


def test_the_shipped_checkpoint_still_answers_as_before() -> None:
    ref = np.load(REFERENCE)
    model = in_eval_mode(SentinelleTSModel.from_pretrained(SHIPPED_CHECKPOINT))
    assert model.config.group_attention is False
    with torch.no_grad():
        q = model(torch.from_numpy(ref["ids"])).quantiles
    assert q is not None
    assert_as_reference(q.numpy(), ref["q"])


def test_warm_started_from_the_shipped_weights_it_answers_as_they_did() -> None:
    ref = np.load(REFERENCE)
    model = in_eval_mode(SentinelleAssetModel.from_pretrained(SHIPPED_CHECKPOINT, group_attention=True))
    ids = torch.from_numpy(ref["ids"])
    with torch.no_grad():
        alone = model(ids).quantiles
        grouped = model(ids[None], current=torch.tensor([[0.5, -0.2, 1.0]])).quantiles
    assert alone is not None and grouped is not None
    assert_as_reference(alone[:, 0].numpy(), ref["q"])
    np.testing.assert_array_equal(grouped[0].numpy(), alone[:, 0].numpy())  # group layers start at zero output


def test_shapes_order_and_loss() -> None:
    model = small()
    ids = torch.randint(1, 256, (3, 4, 64))
    out = model(ids, current=torch.randn(3, 4), labels=torch.randn(3, 4, 8))
    assert out.quantiles is not None and out.estimate is not None and out.loss is not None
    assert tuple(out.quantiles.shape) == (3, 4, 9, 8)
    assert tuple(out.estimate.shape) == (3, 4, 9)
    assert bool((out.quantiles.diff(dim=2) >= 0).all()) and bool((out.estimate.diff(dim=2) >= 0).all())
    assert out.forecast_loss is not None and out.estimate_loss is not None
    assert torch.isclose(out.loss, out.forecast_loss + out.estimate_loss)
    out.loss.backward()
    first = model.group_layers[0]
    assert isinstance(first, GroupAttention) and first.q_proj.weight.grad is not None


def test_one_tag_is_the_univariate_model() -> None:
    model = small()
    univariate = in_eval_mode(SentinelleTSModel(model.config))
    univariate.load_state_dict(model.state_dict(), strict=False)
    ids = torch.randint(1, 256, (5, 64))
    with torch.no_grad():
        grouped = model(ids[:, None], current=torch.randn(5, 1)).quantiles
        alone = univariate(ids).quantiles
    assert grouped is not None and alone is not None
    torch.testing.assert_close(grouped[:, 0], alone, rtol=0, atol=0)


def test_others_change_the_answer_but_not_a_tags_own_current_value() -> None:
    model = small()
    ids = torch.randint(1, 256, (2, 3, 64))
    current = torch.randn(2, 3)
    with torch.no_grad():
        base = model(ids, current=current)
        own = current.clone()
        own[:, 0] += 5.0  # tag 0's own current value: hidden from tag 0
        mine = model(ids, current=own)
        other = current.clone()
        other[:, 1] += 5.0  # another tag's current value: a covariate of tag 0
        theirs = model(ids, current=other)
    assert base.estimate is not None and mine.estimate is not None and theirs.estimate is not None
    torch.testing.assert_close(mine.estimate[:, 0], base.estimate[:, 0], rtol=0, atol=0)
    assert not torch.allclose(theirs.estimate[:, 0], base.estimate[:, 0])


def test_an_absent_tag_does_not_change_the_others() -> None:
    model = small()
    ids = torch.randint(1, 256, (2, 3, 64))
    current = torch.randn(2, 3)
    mask = torch.tensor([[True, True, False], [True, True, False]])
    with torch.no_grad():
        a = model(ids, current=current, tag_mask=mask)
        ids2, current2 = ids.clone(), current.clone()
        ids2[:, 2] = torch.randint(1, 256, (2, 64))
        current2[:, 2] = 9.0
        b = model(ids2, current=current2, tag_mask=mask)
        two = model(ids[:, :2], current=current[:, :2])
        full = model(ids, current=current)
    assert a.quantiles is not None and b.quantiles is not None and two.quantiles is not None
    assert a.estimate is not None and two.estimate is not None and full.quantiles is not None
    torch.testing.assert_close(a.quantiles[:, :2], b.quantiles[:, :2], rtol=0, atol=0)
    torch.testing.assert_close(a.quantiles[:, :2], two.quantiles, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.estimate[:, :2], two.estimate, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(full.quantiles[:, :2], a.quantiles[:, :2])  # the third tag, present, does count


def test_the_loss_ignores_absent_tags() -> None:
    model = small()
    ids = torch.randint(1, 256, (2, 3, 64))
    labels = torch.randn(2, 3, 8)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    a = model(ids, tag_mask=mask, labels=labels).loss
    labels[0, 2] = 1e6
    b = model(ids, tag_mask=mask, labels=labels).loss
    assert a is not None and b is not None
    assert torch.equal(a, b)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = small()
    model.save_pretrained(tmp_path)
    back = in_eval_mode(SentinelleAssetModel.from_pretrained(tmp_path))
    assert back.config.group_attention is True
    ids = torch.randint(1, 256, (2, 3, 64))
    current = torch.randn(2, 3)
    with torch.no_grad():
        a, b = model(ids, current=current), back(ids, current=current)
    assert a.estimate is not None and b.estimate is not None
    torch.testing.assert_close(a.estimate, b.estimate, rtol=0, atol=0)


def test_a_univariate_config_is_refused() -> None:
    with pytest.raises(ValueError, match="group_attention"):
        SentinelleAssetModel(SentinelleTSConfig(d_model=16, num_heads=2, num_layers=1, d_ff=32))


def test_the_shipped_size_asset_model_fits_the_budget(tmp_path: Path) -> None:
    config = SentinelleTSConfig.from_pretrained(SHIPPED_CHECKPOINT)
    config.group_attention = True
    model = SentinelleAssetModel(config)
    shared = SentinelleTSModel.from_pretrained(SHIPPED_CHECKPOINT).param_count()
    assert model.param_count() < 1.3 * shared  # group layers and the now head: < 30 % more
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size <= SIZE_BUDGET_BYTES


def test_the_regression_branch_reads_a_coupling_from_the_context() -> None:
    model = small()
    assert model.regression is not None
    with torch.no_grad():
        model.regression.gate.bias.fill_(20.0)  # trust the regression fully
    t = torch.linspace(0, 12, 65)
    ids0 = 100 + torch.round(20 * torch.sin(t)).long()
    series = torch.stack([ids0, 2 * ids0 - 60, 128 + torch.round(20 * torch.cos(t)).long()])  # tag 1 linear in tag 0
    ids, cb = series[:, :64], model.codebook
    current = torch.tensor([[cb[series[0, 64]], float("nan"), cb[series[2, 64]]]])
    with torch.no_grad():
        out = model(ids[None], current=current)
    assert out.estimate is not None
    err = abs(float(out.estimate[0, 1, model.median_index]) - float(cb[series[1, 64]]))
    assert err < 0.05


ASSET_CHECKPOINT = SHIPPED_CHECKPOINT.parent / "asset"
BLIND_CHECKPOINT = SHIPPED_CHECKPOINT.parent / "asset_blind"
"""The asset checkpoint fine-tuned for the blind estimate (forecast.asset_mask_recent_steps 128), issue 14."""


@pytest.mark.parametrize("checkpoint", [ASSET_CHECKPOINT, BLIND_CHECKPOINT], ids=["asset", "asset_blind"])
def test_the_shipped_asset_checkpoint_shares_the_starter_blocks_and_fits_the_budget(checkpoint: Path) -> None:
    from safetensors.torch import load_file

    assert (checkpoint / "model.safetensors").stat().st_size <= SIZE_BUDGET_BYTES
    asset, starter = (
        load_file(checkpoint / "model.safetensors"),
        load_file(SHIPPED_CHECKPOINT / "model.safetensors"),
    )
    assert set(starter) < set(asset)
    for name, tensor in starter.items():  # trained with these frozen: a lone tag answers as the starter does
        assert torch.equal(asset[name], tensor), name
    model = in_eval_mode(SentinelleAssetModel.from_pretrained(checkpoint))
    assert model.config.group_attention and model.regression is not None
    ref = np.load(REFERENCE)
    with torch.no_grad():
        alone = model(torch.from_numpy(ref["ids"])).quantiles
    assert alone is not None
    assert_as_reference(alone[:, 0].numpy(), ref["q"])


def test_the_blind_checkpoint_records_its_masked_recipe() -> None:
    import json

    recipe = json.loads((BLIND_CHECKPOINT / "training.json").read_text())["recipe"]
    assert recipe["mask_recent_steps"] == 128 and recipe["masked_fraction"] > 0
    assert recipe["init"].endswith("checkpoints/asset (the shipped asset checkpoint)")
