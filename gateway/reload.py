"""SIGHUP: the configuration read again and what may change while running swapped in, all or nothing.

What a reload changes: the fraud rules (and the tag texts), the flash warning templates, the ESME
accounts (passwords, networks, limits, sender rights, MO routes), the 反诈名片 labels file, the
dissuasion templates and the console's accounts (a session whose account went or changed ends at its
next request). Everything is read, checked and compiled first, off the event loop; only when
all of it is good is it installed, in one step of the loop, so that no message or call ever sees half
of an edit. A bad edit installs nothing: the old state keeps running and every error is logged with
its file:line:col. Listening addresses, the SMSC, the store and the broker need a restart; a change
to them is logged as not applied.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import rules
from gateway.config import ConfigError, ConsoleConfig, GatewayConfig, HttpConfig, load
from gateway.logs import get_logger
from gateway.warnings import WarningConfig
from rules.reload import snapshot

if TYPE_CHECKING:
    from gateway.app import Gateway

log = get_logger("afgw.reload")


@dataclass(frozen=True)
class Prepared:
    """A configuration read and checked, with its rules compiled: ready to install."""

    config: GatewayConfig
    ruleset: rules.RuleSet | None
    rule_paths: list[str | Path]


def rule_paths(config: GatewayConfig) -> list[str | Path]:
    return list(config.rules.packs) or [rules.DEFAULT_PACKS] if config.rules is not None else []


def prepare(path: str) -> Prepared:
    """Read ``path`` and compile its rules (blocking: run it in a thread). Raises ConfigError."""
    config = load(path)
    paths = rule_paths(config)
    ruleset = None
    if config.rules is not None:
        try:
            ruleset = rules.build(paths)
        except rules.SourceErrors as exc:
            raise ConfigError([str(e) for e in exc.errors]) from None
    return Prepared(config, ruleset, paths)


async def reload(gateway: Gateway) -> bool:
    """Read the gateway's configuration file again and install it; False (old state kept) on errors."""
    path = gateway.config.source
    loop = asyncio.get_running_loop()
    try:
        prepared = await loop.run_in_executor(None, prepare, path)
    except ConfigError as exc:
        log.error("config.reload_failed", config=path, errors=exc.errors, count=len(exc.errors))
        return False
    problems = _not_reloadable(gateway.config, prepared.config)
    if (gateway.rules is None) != (prepared.ruleset is None):
        problems.append("rules (turned on or off)")
    install(gateway, prepared)
    if problems:
        log.warning("config.restart_needed", config=path, changed=problems)
    config = prepared.config
    log.info(
        "config.reloaded",
        config=path,
        accounts=len(config.smpp.accounts),
        rules=len(prepared.ruleset) if prepared.ruleset is not None else 0,
        labels=len(config.sip.labels.labels) if config.sip is not None and config.sip.labels is not None else 0,
    )
    return True


def install(gateway: Gateway, prepared: Prepared) -> None:
    """Swap everything in; synchronous, so that nothing runs between the first swap and the last."""
    new = prepared.config
    if gateway.smpp is not None:
        gateway.smpp.replace_accounts(new.smpp.accounts)
    inspector = gateway.rules
    if inspector is not None and prepared.ruleset is not None and new.rules is not None:
        inspector.engine.install(prepared.ruleset)
        inspector.tag_prefix = new.rules.tag_prefix
        inspector.call_tag = new.rules.call_tag
        if inspector.warner is not None:
            inspector.warner.config = WarningConfig(
                sender=new.rules.warning_sender,
                templates=dict(new.rules.warning_templates),
                min_interval=new.rules.warning_interval,
            )
        watcher = gateway.watcher
        if watcher is not None:
            # The files just loaded are the ones the watcher would otherwise load again.
            watcher.paths = prepared.rule_paths
            watcher.seen = snapshot(watcher.paths)
    if gateway.sip is not None and new.sip is not None:
        gateway.sip.replace_labels(new.sip.labels)
    if gateway.dissuasion is not None and new.dissuasion is not None and new.dissuasion.templates is not None:
        gateway.dissuasion.templates = new.dissuasion.templates
    console = new.http.console if new.http is not None else None
    if gateway.console is not None:
        # No console section any more: no account is left, and every session ends at its next request.
        gateway.console.replace_accounts(console.accounts if console is not None else ())
    old = gateway.config
    gateway.config = replace(
        old,
        smpp=replace(old.smpp, accounts=new.smpp.accounts),
        rules=new.rules if inspector is not None else old.rules,
        sip=replace(old.sip, labels=new.sip.labels) if old.sip is not None and new.sip is not None else old.sip,
        dissuasion=replace(old.dissuasion, templates=new.dissuasion.templates)
        if old.dissuasion is not None and new.dissuasion is not None
        else old.dissuasion,
        http=_with_console_accounts(old.http, console),
    )


def _with_console_accounts(http: HttpConfig | None, console: ConsoleConfig | None) -> HttpConfig | None:
    """``http`` with ``console``'s accounts (none when it is None): all of the section a reload installs."""
    if http is None or http.console is None:
        return http
    return replace(http, console=replace(http.console, accounts=console.accounts if console is not None else ()))


def _not_reloadable(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """The parts of ``new`` that differ from ``old`` and take a restart."""
    changed = []
    if replace(old.smpp, accounts=()) != replace(new.smpp, accounts=()):
        changed.append("smpp (other than accounts)")
    if (old.sip is None) != (new.sip is None) or (
        old.sip is not None
        and new.sip is not None
        and replace(old.sip, labels=None, labels_path=None) != replace(new.sip, labels=None, labels_path=None)
    ):
        changed.append("sip (other than labels)")
    if _with_console_accounts(old.http, None) != _with_console_accounts(new.http, None):
        changed.append("http (other than console accounts)")
    for name in ("store", "events", "scoring", "capture"):
        if getattr(old, name) != getattr(new, name):
            changed.append(name)
    return changed
