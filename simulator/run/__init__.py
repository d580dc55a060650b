"""The scenario runner behind ``afgw demo`` and ``afgw simulate``.

    report = await run_embedded(scenario)                    # a gateway in this process
    report = await run_external(scenario, config)            # a gateway running on its own

:mod:`~simulator.run.plan` draws the scenario into items, :mod:`~simulator.run.world` says where the
gateway is, :mod:`~simulator.run.player` plays the items on the injected clock and counts.
"""

from __future__ import annotations

from simulator.run.runner import run_embedded, run_external

__all__ = ["run_embedded", "run_external"]
