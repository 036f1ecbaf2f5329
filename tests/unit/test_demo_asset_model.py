"""``sentinelle demo`` runs the asset model (the live view's "from others" column) at a cadence it can afford."""

from __future__ import annotations

from pathlib import Path

from sentinelle.cli.daemon import _demo_asset_model, _simulator_overrides
from sentinelle.cli.parser import build_parser
from sentinelle.forecast import SHIPPED_ASSET_CHECKPOINT
from sentinelle.settings import ForecastSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "sentinelle.toml"


def _settings(*argv: str) -> tuple[ForecastSettings, dict[str, object]]:
    args = build_parser().parse_args(["demo", *argv])
    # As the demo loads them: the file, with the command line's simulator options over it.
    base = load_settings(args.config, simulator=_simulator_overrides(args, load_settings(args.config)))
    forecast, detect = _demo_asset_model(args, base)
    return ForecastSettings(**forecast), detect


def test_the_shipped_asset_checkpoint_is_on_by_default_and_exists() -> None:
    f, _ = _settings()
    assert f.asset_model_path == SHIPPED_ASSET_CHECKPOINT
    assert (SHIPPED_ASSET_CHECKPOINT / "model.safetensors").is_file()
    assert (SHIPPED_ASSET_CHECKPOINT / "config.json").is_file()


def test_one_estimate_per_real_second_and_alerts_on_3_of_5_estimates() -> None:
    f, detect = _settings()  # the demo's 10x time scale, 1 s slots: 10 slots a second
    assert f.asset_estimate_every_steps == 10
    assert detect == {"asset_estimate_open_k": 30, "asset_estimate_open_n": 50}
    f, detect = _settings("--time-scale", "1")
    assert f.asset_estimate_every_steps == 1
    assert detect == {"asset_estimate_open_k": 3, "asset_estimate_open_n": 5}


def test_one_torch_thread_unless_the_file_says() -> None:
    f, _ = _settings()
    assert f.model_threads == 1
    f, _ = _settings("--no-asset-model")
    assert f.model_threads == 1


def test_the_files_choices_are_kept(tmp_path: Path) -> None:
    """A checkpoint, a slower cadence, an opening rule and threads set in the file stand; --asset-model wins."""
    config = tmp_path / "s.toml"
    config.write_text(
        '[forecast]\nasset_model_path = "/models/asset"\nasset_estimate_every_steps = 25\nmodel_threads = 2\n'
        "[detect]\nasset_estimate_open_k = 2\nasset_estimate_open_n = 3\n"
    )
    f, detect = _settings("--config", str(config))
    assert f.asset_model_path == Path("/models/asset") and f.asset_estimate_every_steps == 25
    assert f.model_threads == 2
    assert detect == {}
    f, _ = _settings("--config", str(config), "--asset-model", str(tmp_path))
    assert f.asset_model_path == tmp_path


def test_no_asset_model_turns_it_off() -> None:
    f, detect = _settings("--no-asset-model", "--config", str(EXAMPLE))
    assert f.asset_model_path is None and detect == {}
