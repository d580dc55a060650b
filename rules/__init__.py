"""Fraud rules in YAML: strict loading, validation, normalisation, Hyperscan compilation, evaluation.

    ruleset = rules.build(["rules/packs"])          # SourceErrors lists every problem, file:line:col
    engine = rules.Engine(ruleset)
    verdict = engine.evaluate(rules.Message(channel="sms", src="+85212345678", dst="13800000001", text="..."))

This package imports nothing from ``gateway`` or ``simulator``.

The modules that run for every message (:data:`rules._mypyc_build.HOT`: the engine, the views, the
conditions, the counters, the message) are strictly typed so that mypyc can compile them (``make
compile-rules``); without a build, or after ``make clean-compiled``, the Python sources run as they are.
A build older than the source it came from is refused at import rather than run in its place
(:mod:`._build`).
"""

from rules import _build  # noqa: F401  (first: it refuses a stale compiled build)
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
