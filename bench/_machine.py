"""What every benchmark result records about where it ran: CPU, cores, memory, Python, torch, device."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """The machine and device a benchmark ran on, for its JSON result."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
    }
    with contextlib.suppress(ValueError, OSError):
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def write_result(out: Path, benchmark: str, device: str, settings: dict[str, Any], results: Any, **extra: Any) -> None:
    """Write a benchmark's JSON result: name, UTC date, the machine (``machine_info(device)``),
    its settings and results, then any ``extra`` sections; say where it went."""
    doc = {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(device),
        "settings": settings,
        "results": results,
        **extra,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


def merged_runs(out: Path, runner: str, result: Any) -> dict[str, Any]:
    """The ``runs`` section of ``out``'s previous result, with ``runner``'s entry replaced by ``result``.

    For scripts whose runners are run one at a time (each takes minutes): one file keeps every
    runner's latest result, and running one again replaces only its own entry.
    """
    old = json.loads(out.read_text()) if out.is_file() else {}
    runs: dict[str, Any] = old.get("runs", {})
    return {k: v for k, v in runs.items() if k != runner} | {runner: result}
