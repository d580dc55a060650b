"""``afgw demo`` and ``afgw simulate``: play a scenario through the gateway and print its report.

``afgw demo`` plays the default scenario (or the one named) against the shipped gateway in this
process on loopback (:func:`simulator.run.run_embedded`); ``afgw simulate`` plays a scenario against
a gateway running on its own (:func:`simulator.run.run_external`). Both print the report for a
carrier engineer, may write it as JSON (DESIGN.md's keys) and as one self-contained HTML page, and
exit 0 only when the scenario's expectations held (1 otherwise, 2 for a scenario or configuration that
cannot be read).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from gateway.capture import CaptureConfig
from gateway.config import ConfigError
from gateway.config import load as load_config
from rules.yaml_source import SourceErrors
from simulator import report_html, report_text, scenarios
from simulator.report import Report
from simulator.report_expectations import exit_code
from simulator.run import run_embedded, run_external
from simulator.run.player import console_progress
from simulator.scenarios import Scenario

EXIT_UNREADABLE = 2


def load_scenario(name_or_path: str, *, seed: int | None = None) -> Scenario:
    """A shipped scenario by name (default, fraud-wave ...) or a scenario file; ``seed`` replaces its own."""
    shipped = scenarios.shipped()
    if name_or_path not in shipped and not Path(name_or_path).exists():
        raise OSError(f"{name_or_path}: no such scenario file, nor a shipped scenario ({', '.join(sorted(shipped))})")
    scenario = scenarios.load(shipped.get(name_or_path, name_or_path))
    return dataclasses.replace(scenario, seed=seed) if seed is not None else scenario


async def _write(report: Report, json_path: str | None, html_path: str | None) -> None:
    if json_path:
        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
        await asyncio.to_thread(Path(json_path).write_text, text, encoding="utf-8")
    if html_path:
        await asyncio.to_thread(Path(html_path).write_text, report_html.render(report), encoding="utf-8")


async def run_demo(
    *,
    scenario: str = "default",
    json_path: str | None = None,
    html_path: str | None = None,
    seed: int | None = None,
    scale: float = 1.0,
    capture: CaptureConfig | None = None,
) -> int:
    try:
        chosen = load_scenario(scenario, seed=seed)
    except (SourceErrors, OSError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNREADABLE
    print(f"afgw demo: scenario {chosen.name}, {chosen.description}", file=sys.stderr)
    report = await run_embedded(chosen, scale=scale, progress=console_progress(), capture=capture)
    print(report_text.render(report), end="")
    await _write(report, json_path, html_path)
    return exit_code(report.expectations)


async def run_simulate(
    scenario_path: str,
    config_path: str,
    *,
    json_path: str | None = None,
    html_path: str | None = None,
    seed: int | None = None,
    scale: float = 1.0,
) -> int:
    try:
        chosen = load_scenario(scenario_path, seed=seed)
        config = load_config(config_path)
    except (SourceErrors, OSError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNREADABLE
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        report = await run_external(chosen, config, scale=scale, progress=console_progress())
    except (ValueError, TimeoutError) as exc:
        print(f"afgw simulate: {exc or 'the gateway did not bind to the simulated SMSC'}", file=sys.stderr)
        return EXIT_UNREADABLE
    print(report_text.render(report), end="")
    await _write(report, json_path, html_path)
    return exit_code(report.expectations)
