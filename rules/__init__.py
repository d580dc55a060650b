"""Fraud rules in YAML: strict loading, validation, normalisation, Hyperscan compilation, evaluation.

    ruleset = rules.build(["rules/packs"])          # SourceErrors lists every problem, file:line:col
    engine = rules.Engine(ruleset)
    verdict = engine.evaluate(rules.Message(channel="sms", src="+85212345678", dst="13800000001", text="..."))

This package imports nothing from ``gateway`` or ``simulator``.

The modules that run for every message (the engine, the views, the conditions, the counters, the
message; listed in the Makefile) are strictly typed so that mypyc compiles them when ``make`` sets up
(``make compile``); where it cannot, or after ``make clean-compiled``, the Python sources run as they
are. A build older than its source is not used: the whole package then runs from its sources, with a
warning (:mod:`afgw_compiled`).
"""

from pathlib import Path

from afgw_compiled import use_fresh_build

use_fresh_build(__name__, Path(__file__).parent, "compile")  # first: before any module of the package loads

from rules.compiler import RuleSet, build, check, compile_collection
from rules.engine import Action, Engine, Match, Risk, Verdict
from rules.loader import DEFAULT_PACKS, load, rule_files
from rules.message import Message, MessageError, message_from_mapping
from rules.reload import ReloadResult, RuleWatcher, install_sighup
from rules.velocity import MemoryVelocity, VelocityStore
from rules.yaml_source import Location, SourceError, SourceErrors

__all__ = [
    "DEFAULT_PACKS",
    "Action",
    "Engine",
    "Location",
    "Match",
    "MemoryVelocity",
    "Message",
    "MessageError",
    "ReloadResult",
    "Risk",
    "RuleSet",
    "RuleWatcher",
    "SourceError",
    "SourceErrors",
    "VelocityStore",
    "Verdict",
    "build",
    "check",
    "compile_collection",
    "install_sighup",
    "load",
    "message_from_mapping",
    "rule_files",
]
