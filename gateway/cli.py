"""The ``afgw`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway import logs


def run_loop(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main`` on uvloop where it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


def _cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from gateway.app import serve
    from gateway.config import ConfigError, load

    try:
        config = load(args.config)
        config = replace(config, capture=_capture(args, config.capture))
        if args.workers > 1:
            from gateway.workers import Supervisor, check_workers

            check_workers(config, args.workers)
            supervisor = Supervisor(lambda index: _worker_command(args, index), args.workers)
            return int(run_loop(supervisor.serve))
        if args.worker is not None:
            from gateway.workers import as_worker

            config = as_worker(config, *args.worker)
        # Rule packs are checked when the gateway starts; their errors are configuration errors too.
        run_loop(lambda: serve(config))
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, describe, load

    try:
        config = load(args.file, check_rules=True)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        count = len(exc.errors)
        print(f"{args.file}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    for line in describe(config):
        print(f"  {line}")
    return 0


def _worker_command(args: argparse.Namespace, index: int) -> list[str]:
    """The command line of worker ``index``: this ``afgw run`` as one of ``args.workers``."""
    command = [sys.executable, "-m", "gateway.cli", "--log-format", args.log_format, "--log-level", args.log_level]
    command += ["run", "-c", args.config, "--worker", f"{index}/{args.workers}"]
    for option, value in (("--pcap", args.pcap), ("--pcap-size", args.pcap_size), ("--pcap-count", args.pcap_count)):
        if value is not None:
            command += [option, str(value)]
    return command


def _worker_role(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        role = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not INDEX/COUNT") from None
    if not 0 <= role[0] < role[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: INDEX must be from 0 to COUNT - 1")
    return role


def _cmd_smsc(args: argparse.Namespace) -> int:
    from simulator.smsc import run_smsc

    run_loop(
        lambda: run_smsc(
            args.host,
            args.port,
            system_id=args.system_id,
            password=args.password,
            mo=args.mo,
            mo_retry=args.mo_retry,
            receipt_delay=args.receipt_delay,
        )
    )
    return 0


def _mo(spec: str) -> Any:
    from simulator.smsc import MoMessage

    try:
        return MoMessage.parse(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_SMSC_HELP = """\
A simulated SMSC on its own, for the gateway to bind to. It accepts binds with the given system_id and
password, answers every submit_sm, data_sm and submit_multi with a message_id, and prints each message
as it stores it for its handset:

  stored <message_id>: <from> -> <to>: <text>

(a concatenated message once, when its last part has arrived).

Delivery receipts: a submit whose registered_delivery asks for one (its low two bits 01) gets a
DELIVRD receipt: a deliver_sm with esm_class 0x04, the text "id:<message_id> sub:001 dlvrd:001 ...
stat:DELIVRD err:000 text:", and the receipted_message_id and message_state (2) TLVs. It goes
--receipt-delay seconds after the submit_sm_resp, on the bind that submitted the message, or on
another bound receiver or transceiver when that bind cannot take deliveries. No other submit gets one.

Mobile-originated messages: each --mo FROM:TO:TEXT (TEXT may contain colons; repeat the option for
more) is sent as a deliver_sm, in order, as soon as a receiver or transceiver bind can take it,
GSM 7-bit when the text allows and UCS2 otherwise (so at most 160 or 70 characters). Each prints
"mo delivered: <from> -> <to>: <text> (ESME_ROK)", or "mo refused: ... (<status>)" for a permanent
error. A temporary one (ESME_RX_T_APPN: the gateway has no bind of the receiving ESME yet;
ESME_RTHROTTLED, ESME_RMSGQFUL) prints "mo deferred: ..." once and is retried every --mo-retry
seconds, as an SMSC keeps a message and retries.
"""


def _quiet_logs() -> None:
    """The demo's report says what happened; the per-message warnings (each block, each flash) would
    bury it. Set here, by the command, not by the simulator: a test or program that runs a scenario
    keeps its own logging."""
    logs.configure("console", "error")


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from simulator.demo import run_demo

    _quiet_logs()
    try:
        capture = _capture(args, None)
        return int(
            run_loop(
                lambda: run_demo(
                    scenario=args.scenario,
                    json_path=args.json,
                    html_path=args.html,
                    seed=args.seed,
                    scale=args.scale,
                    capture=capture,
                )
            )
        )
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2


def _cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.demo import run_simulate

    _quiet_logs()
    return int(
        run_loop(
            lambda: run_simulate(
                args.scenario, args.config, json_path=args.json, html_path=args.html, seed=args.seed, scale=args.scale
            )
        )
    )


def _pcap_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("capture (the section capture: of the configuration, overridden here)")
    group.add_argument(
        "--pcap", metavar="FILE", help="record the gateway's SMPP and SIP traffic in FILE (pcap, for Wireshark)"
    )
    group.add_argument(
        "--pcap-size",
        type=_greater_than(0.001, float),
        metavar="MB",
        help="megabytes (millions of octets) per file before FILE.1, FILE.2 ... (default: 100)",
    )
    group.add_argument(
        "--pcap-count",
        type=_greater_than(1, int),
        metavar="N",
        help="files kept, the one being written included (default: 10)",
    )


def _greater_than(least: float, kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{text} is less than {least:g}")
        return value

    return parse


def _capture(args: argparse.Namespace, configured: Any) -> Any:
    """The capture the configuration names, with what the command line says instead."""
    from gateway.capture import CaptureConfig
    from gateway.config import ConfigError

    path = args.pcap or (configured.pcap if configured is not None else None)
    if path is None:
        if args.pcap_size is not None or args.pcap_count is not None:
            raise ConfigError(["--pcap-size and --pcap-count need --pcap FILE (or capture.pcap in the configuration)"])
        return None
    base = configured if configured is not None else CaptureConfig(pcap=path)
    return CaptureConfig(
        pcap=path,
        pcap_size=args.pcap_size if args.pcap_size is not None else base.pcap_size,
        pcap_count=args.pcap_count if args.pcap_count is not None else base.pcap_count,
    )


def _cmd_scenario_check(args: argparse.Namespace) -> int:
    from rules.yaml_source import SourceErrors
    from simulator import scenarios

    failed = False
    for path in args.files:
        try:
            scenario = scenarios.load(path)
        except SourceErrors as exc:
            failed = True
            for error in exc.errors:
                print(error, file=sys.stderr)
            continue
        traffic = scenario.traffic
        print(
            f"{path}: ok: {scenario.name}, {scenario.population.count} subscribers, {traffic.sms_count} SMS, "
            f"{traffic.call_count} calls, {traffic.instruction_count} instructions over {scenario.duration:g} s "
            f"simulated (at least {scenario.real_seconds:.1f} s real)"
        )
    return 2 if failed else 0


def _log_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before and after the command (`afgw run -c FILE --log-format json`, as the README puts it);
    # after it, only a value actually given overrides the one before.
    fmt, level = ("console", "info") if defaults else (argparse.SUPPRESS, argparse.SUPPRESS)
    parser.add_argument("--log-format", choices=("console", "json"), default=fmt, help="log line format")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=level)


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON to this file")
    parser.add_argument("--html", metavar="FILE", help="write the report as one self-contained HTML page")
    parser.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="play this share of every count (0 < SCALE <= 1; for quick runs)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="afgw", description="Anti-fraud carrier gateway for SMPP and SIP.")
    _log_options(parser, defaults=True)
    logging_options = argparse.ArgumentParser(add_help=False)
    _log_options(logging_options, defaults=False)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway", parents=[logging_options])
    run.add_argument("-c", "--config", default="config/gateway.yaml", help="gateway.yaml to use")
    run.add_argument(
        "--workers",
        type=_greater_than(1, int),
        default=1,
        metavar="N",
        help="run N worker processes on the same ports (SO_REUSEPORT) under a supervisor that restarts a "
        "dead one; needs store.backend: redis (default: 1, no supervisor)",
    )
    # Set by the supervisor on the command lines of its workers.
    run.add_argument("--worker", type=_worker_role, help=argparse.SUPPRESS)
    _pcap_options(run)
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser(
        "demo",
        help="play a scenario through the gateway on loopback and print the report",
        description="The gateway in this process between a simulated network (ESMEs, SIP trunk, the "
        "anti-fraud centre) and a simulated town (SMSC, handsets, people). Exit 0 when the scenario's "
        "expectations held, 1 when one failed, 2 when the scenario cannot be read.",
        parents=[logging_options],
    )
    demo.add_argument("--scenario", default="default", help="a shipped scenario's name or a scenario file")
    _report_options(demo)
    _pcap_options(demo)
    demo.set_defaults(func=_cmd_demo)

    simulate = sub.add_parser(
        "simulate",
        help="play a scenario against a gateway running on its own",
        description="The simulator alone: it listens as the SMSC and binds as the ESMEs, calls from the "
        "trusted trunk address and registers handsets, all where the gateway's configuration says.",
        parents=[logging_options],
    )
    simulate.add_argument("scenario", help="a scenario file (or a shipped scenario's name)")
    simulate.add_argument("-c", "--config", default="config/gateway.yaml", help="the gateway's gateway.yaml")
    _report_options(simulate)
    simulate.set_defaults(func=_cmd_simulate)

    smsc = sub.add_parser(
        "smsc",
        help="run the simulated SMSC on its own",
        description=_SMSC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[logging_options],
    )
    smsc.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    smsc.add_argument("--port", type=int, default=2776, help="TCP port to listen on (default: %(default)s)")
    smsc.add_argument("--system-id", default="afgw", help="system_id a bind must give (default: %(default)s)")
    smsc.add_argument("--password", default="secret", help="password a bind must give (default: %(default)s)")
    smsc.add_argument(
        "--mo",
        type=_mo,
        action="append",
        default=[],
        metavar="FROM:TO:TEXT",
        help="a mobile-originated message to deliver once the gateway has bound; repeatable",
    )
    smsc.add_argument(
        "--mo-retry",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between attempts at an --mo message refused for now (default: %(default)s)",
    )
    smsc.add_argument(
        "--receipt-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before sending a requested delivery receipt (default: %(default)s)",
    )
    smsc.set_defaults(func=_cmd_smsc)

    config_cmd = sub.add_parser("config", help="the gateway's configuration", parents=[logging_options])
    config_sub = config_cmd.add_subparsers(dest="config_command", required=True)
    config_check = config_sub.add_parser(
        "check",
        help="check gateway.yaml and the files it names: every error as file:line:col (exit 2), or a summary",
        parents=[logging_options],
    )
    config_check.add_argument("file", metavar="FILE", help="gateway.yaml to check")
    config_check.set_defaults(func=_cmd_config_check)

    scenario = sub.add_parser("scenario", help="simulator scenarios", parents=[logging_options])
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    check = scenario_sub.add_parser(
        "check",
        help="validate scenario files (file:line:col errors, exit 2)",
        parents=[logging_options],
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    check.set_defaults(func=_cmd_scenario_check)

    from gateway import rules_cli

    rules_cli.add_parser(sub, parents=[logging_options])

    from gateway import keys

    keys.add_parser(sub, parents=[logging_options])

    from gateway.dissuasion import case_cli

    case_cli.add_parser(sub, parents=[logging_options])

    from gateway.web.console import cli as console_cli

    console_cli.add_parser(sub, parents=[logging_options])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
