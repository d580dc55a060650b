"""Simulator scenarios in YAML: the town, the traffic over simulated time, and what the run must achieve.

    scenario = scenarios.load("simulator/scenarios/default.yaml")   # SourceErrors: file:line:col problems
    scenarios.shipped()                                             # {"default": Path, "fraud-wave": ...}

The format is described by :mod:`simulator.scenarios.spec` (and its JSON Schema, scenario.schema.json,
for editors); README.md in this directory walks through it.
"""

from simulator.scenarios.loader import SHIPPED_DIR, load, loads, parse_duration, shipped
from simulator.scenarios.model import Scenario

__all__ = ["SHIPPED_DIR", "Scenario", "load", "loads", "parse_duration", "shipped"]
