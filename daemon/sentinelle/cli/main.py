"""The entry point: parse the command line, run the command, map errors to exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from ..config_checks import check_runnable
from ..errors import ConfigError, ModelError, ServiceUnavailable
from ..settings import load_settings
from .common import (
    EXIT_BUG,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    _setup_logging,
    check_outputs,
    check_writable_folder,
)
from .daemon import (
    _check_config,
    _demo,
    _exit_now_if_compute_lingers,
    _make_cert,
    _run,
    _simulate,
    _simulator_overrides,
)
from .evaluate import _backtest, _evaluate
from .parser import build_parser
from .training import _finetune, _pretrain


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_outputs(args)
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "run":
            settings = load_settings(args.config)
            check_runnable(settings)
            _setup_logging(settings.daemon.log_level)
            return _exit_now_if_compute_lingers(asyncio.run(_run(settings)))
        if args.command == "simulate":
            base = load_settings(args.config)
            settings = load_settings(args.config, simulator=_simulator_overrides(args, base))
            if settings.simulator.ground_truth_path is not None:
                check_writable_folder(settings.simulator.ground_truth_path.parent, "simulator.ground_truth_path")
            _setup_logging(settings.daemon.log_level)
            return asyncio.run(_simulate(settings))
        if args.command == "demo":
            return _demo(args)
        if args.command == "make-cert":
            return _make_cert(args)
        if args.command == "pretrain":
            return _pretrain(args)
        if args.command == "finetune":
            return _finetune(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "evaluate":
            return _evaluate(args)
    except ConfigError as e:
        print(f"sentinelle: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except ServiceUnavailable as e:  # an offline command's database (finetune/backtest history) is down
        print(f"sentinelle: service unavailable: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ModelError as e:  # a checkpoint or adapter that does not load, wherever a command loads one
        print(f"sentinelle: model error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_BUG
