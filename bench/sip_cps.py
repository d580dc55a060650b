"""SIP calls per second through the gateway, against Kamailio and against no proxy at all, in one run.

sipp's built-in UAC calls sipp's built-in UAS (INVITE, 100, 180, 200, ACK, BYE, 200 per call) at
rising rates, each rate for a bounded number of calls, on these paths:

- direct: UAC -> UAS, no proxy (what the box and sipp can do by themselves);
- kamailio: UAC -> Kamailio (bench/kamailio.cfg: tm + rr, one worker, routing statically to the UAS,
  no registrar) -> UAS;
- afgw: UAC -> ``afgw run`` (one process; the UAS registered with its registrar first, calls routed
  by the location service, every INVITE through the STIR policy's strip checks and the call
  inspection hook) -> UAS;
- afgw-noverify and afgw-verify: the same, but every INVITE comes from 96110 and carries its own
  Identity header (a PASSporT the anti-fraud centre's key signed for that call, labelled 公安反诈专号,
  injected by sipp from a CSV file, one token per call so that none is a replay). afgw-noverify runs
  the gateway without labels.yaml (the Identity header is stripped unread); afgw-verify with it (every
  INVITE verified: signature, certificate chain, claims, replay cache; then P-Asserted-Identity and
  Call-Info stamped). The tokens are signed before the run, so the labels file used here allows an iat
  up to an hour old.

Before the sweeps it prints the STIR policy's cost per INVITE measured in process (strip, verify,
stamp), for an ordinary call and for a labelled one.

For each path it prints, per rate, the successful and failed calls and the INVITE -> 200 response
time (sipp's -rtd, from -trace_rtt, millisecond resolution); the ladder climbs until the path fails 10%
of its calls. Then a table of every path side by side, each path's ceiling (the highest rate with
under 1% failed calls), its prompt ceiling (the highest of those whose INVITE -> 200 mean stays under
100 ms: a step is a bounded number of calls, which a proxy that cannot keep up still completes by
draining its backlog after the step, each call then waiting hundreds of milliseconds for its answer),
the ratios of the gateway to Kamailio and to the direct path on both, and verification on vs off.
Everything is on loopback.

    python bench/sip_cps.py [--rates 100,200,400,500,600,800,1000,1200] [--seconds 5] [--max-calls 4000]
                            [--paths direct,kamailio,afgw,afgw-noverify,afgw-verify] [--workers 1]

``--workers 2`` runs the gateway as two processes and Kamailio with two UDP children; the load starts
once every worker answers. Kamailio's children read one shared socket, so the 180 and the 200 of a
call may be relayed by different children and overtake each other, which sipp's UAC counts as a
failed call. The gateway's workers do not: the answers to what a worker relays come back to a port of
its own. The kernel spreads the gateway's shared port over its workers by the sender's address and
port, so with ``--workers`` above 1 sipp's UAC sends each call from a socket of its own (``-t un``, at
most 10,000 sockets, then shared), on every path alike: from one socket, every call would reach one
worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulator.ports import free_udp_tcp_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUFFER = str(4 << 20)
#: The Redis keys of this run's gateway workers (--workers 2 and more).
REDIS_PREFIX = f"sipcps{os.getpid()}"
CALLEE = "8613800000001"
CENTRE = "96110"
X5U = "https://stir.afc.example.cn/shaken/signer.pem"
#: A rate is carried when fewer than this share of its calls fail; the ceiling is the highest such rate.
CEILING_FAILURES = 0.01
#: A clean step whose INVITE->200 mean stays under this (ms) is prompt: the proxy kept up without queueing.
PROMPT_MS = 100.0
#: The ladder climbs until a path fails this share of its calls: well past the knee, not one stray loss.
GIVE_UP_FAILURES = 0.10


@dataclass
class Step:
    rate: int
    calls: int
    successful: int = 0
    failed: int = 0
    rtd_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def failed_share(self) -> float:
        """Calls that did not succeed (failed, or never completed), as a share of those attempted."""
        return (self.calls - self.successful) / self.calls if self.calls else 1.0

    @property
    def clean(self) -> bool:
        """Under 1% of the calls did not succeed: the rate the path carries."""
        return self.failed_share < CEILING_FAILURES

    @property
    def prompt(self) -> bool:
        """Clean, and answered without queueing: a step of at most ``--max-calls`` calls can complete
        every call at a rate a proxy cannot keep up, the backlog drained after the step, each call then
        waiting hundreds of milliseconds for its 200; a caller hears that as post-dial delay."""
        return self.clean and self.mean < PROMPT_MS

    def percentile(self, q: float) -> float:
        if not self.rtd_ms:
            return float("nan")
        ordered = sorted(self.rtd_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.rtd_ms) if self.rtd_ms else float("nan")


async def answers(port: int, within: float = 10.0, *, workers: int = 1) -> bool:
    """Whether something on 127.0.0.1:port answers a SIP OPTIONS (Max-Forwards 0: a proxy answers
    it itself, 483 or 200) within ``within`` seconds; with ``workers`` above 1, whether that many
    gateway workers do. Each worker answers from a UDP port of its own, and each probe leaves from a
    fresh source port, which the kernel's hash gives to any worker that has joined the shared port.
    Until every worker has joined, the kernel's choice of worker for a peer may change under load:
    the retransmissions, CANCELs, ACKs and BYEs of the calls under way would reach a worker that
    holds neither their transaction nor their dialog."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    answering: set[int] = set()
    n = 0
    while loop.time() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            sock.setblocking(False)
            local = sock.getsockname()[1]
            probe = (
                f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{local};branch=z9hG4bKprobe{n}\r\n"
                f"Max-Forwards: 0\r\nFrom: <sip:probe@127.0.0.2>;tag=p\r\nTo: <sip:127.0.0.1>\r\n"
                f"Call-ID: probe{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            n += 1
            sock.sendto(probe.encode(), ("127.0.0.1", port))
            try:
                _, (_, source) = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 0.1)
            except TimeoutError:
                continue
            answering.add(source)
            if len(answering) >= workers:
                return True
    return False


async def stopped(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def process(*argv: str, cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=str(cwd), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        await stopped(proc)


async def sipp(*argv: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "sipp", *argv, "-nostdin", "-buff_size", BUFFER, cwd=str(cwd),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def _stats(path: Path) -> dict[str, str]:
    rows = [line.split(";") for line in path.read_text().splitlines() if line.strip()]
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) > 1 else {}


#: Extra sipp arguments for one step of a path: the scenario, and its injection file if any.
Scenario = Callable[[int, int], list[str]]


def builtin_uac(rate: int, calls: int) -> list[str]:
    return ["-sn", "uac"]


#: With several proxy workers, a UDP socket of its own for each call (up to this many, then shared): the
#: kernel spreads a shared port over the workers by the sender's address and port, so calls from one
#: socket would all reach one worker.
SOCKETS_PER_CALL = ["-t", "un", "-max_socket", "10000"]


async def run_load(
    target: str, rate: int, calls: int, work: Path, scenario: Scenario = builtin_uac, *, spread: bool = False
) -> Step:
    step = Step(rate, calls)
    stat = work / f"load_{rate}_{abs(hash(target)) % 10**6}_stat.csv"
    await sipp(
        *scenario(rate, calls), *(SOCKETS_PER_CALL if spread else []),
        target, "-i", "127.0.0.2", "-p", str(free_udp_tcp_port()), "-s", CALLEE,
        "-r", str(rate), "-m", str(calls), "-l", str(max(rate * 4, 100)),
        "-recv_timeout", "5000", "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-trace_rtt", "-rtt_freq", "100", "-trace_err", "-error_file", str(work / "errors.log"), cwd=work,
    )  # fmt: skip
    stats = _stats(stat) if stat.exists() else {}
    step.successful = int(stats.get("SuccessfulCall(C)", 0))
    step.failed = int(stats.get("FailedCall(C)", 0))
    step.rtd_ms = _response_times(work)
    step.errors = _error_reasons(work / "errors.log")
    return step


def _error_reasons(path: Path) -> dict[str, int]:
    """sipp's reasons for aborting calls (-trace_err), counted, with the Call-IDs taken out."""
    reasons: dict[str, int] = {}
    if path.exists():
        for match in re.finditer(r"^\S+\t\S+\t[0-9.]+: (.*)$", path.read_text(errors="replace"), re.MULTILINE):
            text = re.sub(r"Call-I[dD][: ]+'?[^\s',]+'?,?\s*", "", match.group(1))
            reason = text.split(", received")[0].split("'")[0].strip()[:100]
            reasons[reason] = reasons.get(reason, 0) + 1
        path.unlink()
    return reasons


def _response_times(work: Path) -> list[float]:
    """INVITE -> 200 times (rtd 1) from sipp's -trace_rtt file, named after the scenario and pid."""
    times: list[float] = []
    for found in work.glob("uac_*_rtt.csv"):
        for line in found.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2] == "1":
                times.append(float(parts[1]))
        found.unlink()
    return times


async def sweep(
    label: str,
    target: str,
    rates: list[int],
    args: argparse.Namespace,
    work: Path,
    scenario: Scenario = builtin_uac,
) -> list[Step]:
    steps: list[Step] = []
    for rate in rates:
        calls = min(rate * args.seconds, args.max_calls)
        step = await run_load(target, rate, calls, work, scenario, spread=args.workers > 1)
        steps.append(step)
        print(
            f"  {label:13} {rate:5d} cps  {step.successful:5d} ok  {step.failed:4d} failed "
            f"({100 * step.failed_share:5.1f}%)  INVITE->200 mean {step.mean:6.2f} ms  "
            f"p50 {step.percentile(0.5):5.1f}  p99 {step.percentile(0.99):6.1f}",
            flush=True,
        )
        if not step.clean:
            for reason, count in sorted(step.errors.items(), key=lambda kv: -kv[1])[:3]:
                print(f"  {'':13} {count:5d} x {reason}", flush=True)
        if step.failed_share >= GIVE_UP_FAILURES:
            break  # well past the knee: higher rates only fail more
        await asyncio.sleep(1.0)  # let the previous calls' transactions drain
    return steps


def best(steps: list[Step], *, prompt: bool = False) -> Step | None:
    kept = [s for s in steps if (s.prompt if prompt else s.clean)]
    return max(kept, key=lambda s: s.rate) if kept else None


def gateway_config(sip_port: int, labels: Path | None = None, *, workers: int = 1) -> str:
    labels_line = f"  labels: {labels}\n" if labels is not None else ""
    # Workers share registrations through Redis (afgw run --workers needs it), under keys of this run's own.
    store = f"store: {{backend: redis, redis_prefix: {REDIS_PREFIX}}}\n" if workers > 1 else ""
    return f"""\
{store}smpp:
  listen: {{host: 127.0.0.1, port: {free_udp_tcp_port()}}}
  smsc: {{host: 127.0.0.1, port: {free_udp_tcp_port()}}}
sip:
  listen: {{host: 127.0.0.1, udp_port: {sip_port}, tcp_port: {sip_port}}}
  domain: 127.0.0.1
  trusted_peers: ["127.0.0.2"]
{labels_line}  registrar:
    auth: "off"
"""


# --- Identity-carrying INVITEs -----------------------------------------------------------------------------


class Centre:
    """The anti-fraud centre's keys (``afgw keys init``), a labels.yaml using them, and signed tokens."""

    def __init__(self, work: Path) -> None:
        import datetime as dt

        from gateway.keys import init_keys
        from gateway.labels import build_registry, load_labels, load_signer

        shipped = ROOT / "config" / "labels.yaml"
        init_keys(work / "stir", build_registry(load_labels(shipped)), X5U, now=dt.datetime.now(dt.UTC))
        text = shipped.read_text(encoding="utf-8").replace("../var/stir/", "stir/")
        self.labels = work / "labels.yaml"
        # Tokens are signed before the sweep: let them stay fresh for its length.
        self.labels.write_text(text.replace("freshness: 60\n", "freshness: 3600\n"), encoding="utf-8")
        config = load_labels(self.labels)
        self.config = config
        self.signer = load_signer(config)
        self.label = build_registry(config).lookup(CENTRE)
        self.work = work
        self._files: dict[tuple[int, int], Path] = {}
        # The scenario: sipp's own uac, calling from 96110 with an Identity header from the CSV file.
        # sipp -sd prints the scenario and exits with status 99.
        scenario = subprocess.run(["sipp", "-sd", "uac"], capture_output=True, text=True, check=False).stdout
        scenario = scenario.replace("From: sipp <sip:sipp@", f"From: <sip:{CENTRE}@")
        scenario = scenario.replace(
            "      Max-Forwards: 70\n      Subject: Performance Test\n      Content-Type: application/sdp",
            f"      Max-Forwards: 70\n      Identity: [field0];info=<{X5U}>;alg=ES256;ppt=shaken\n"
            "      Subject: Performance Test\n      Content-Type: application/sdp",
            1,
        )
        if "[field0]" not in scenario or "<sip:96110@" not in scenario:
            raise SystemExit("could not derive the Identity scenario from `sipp -sd uac`")
        self.scenario_path = work / "uac_identity.xml"
        self.scenario_path.write_text(scenario, encoding="latin-1")

    def tokens(self, rate: int, calls: int) -> Path:
        """A CSV of ``calls`` distinct tokens for one step (the same file for both gateway paths)."""
        key = (rate, calls)
        if key not in self._files:
            now = int(time.time())
            path = self.work / f"tokens_{rate}_{calls}.csv"
            lines = ["SEQUENTIAL"]
            for i in range(calls):
                identity = self.signer.sign(orig=CENTRE, dest=CALLEE, iat=now, label=self.label, origid=f"b{rate}-{i}")
                lines.append(identity.token)
            path.write_text("\n".join(lines) + "\n")
            self._files[key] = path
        return self._files[key]

    def scenario(self, rate: int, calls: int) -> list[str]:
        return ["-sf", str(self.scenario_path), "-inf", str(self.tokens(rate, calls))]


def policy_cost(centre: Centre, count: int = 2000) -> tuple[float, float, float]:
    """µs per INVITE in the STIR policy (strip, verify, stamp): ordinary, labelled, and verify alone."""
    from gateway.config import SipStir
    from gateway.sip.stir_policy import Admit, StirPolicy, build_call_verifier
    from protocols.sip import parse_message
    from protocols.stir import CallInfo

    def invite(caller: str, identity: str | None, n: int) -> bytes:
        extra = f"Identity: {identity}\r\n" if identity else ""
        return (
            f"INVITE sip:{CALLEE}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bK{n}\r\n"
            f"From: sipp <sip:{caller}@127.0.0.2:5080>;tag={n}\r\nTo: <sip:{CALLEE}@127.0.0.1>\r\n"
            f"Call-ID: {n}@127.0.0.2\r\nCSeq: 1 INVITE\r\nContact: <sip:{caller}@127.0.0.2:5080>\r\n"
            f"Max-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        ).encode()

    verifier = build_call_verifier(centre.config)
    policy = StirPolicy(SipStir(), verifier, domain="127.0.0.1")
    now = time.time()
    signed = [
        centre.signer.sign(orig=CENTRE, dest=CALLEE, iat=int(now), label=centre.label, origid=f"p{i}").serialise()
        for i in range(2 * count)
    ]
    ordinary = [parse_message(invite("8613912345678", None, i)) for i in range(count)]
    labelled = [parse_message(invite(CENTRE, signed[i], i)) for i in range(count)]
    start = time.perf_counter()
    for request in ordinary:
        policy.screen(request, CALLEE, now)  # type: ignore[arg-type]
    plain = (time.perf_counter() - start) / count
    start = time.perf_counter()
    for request in labelled:
        verdict = policy.screen(request, CALLEE, now)  # type: ignore[arg-type]
        if not isinstance(verdict, Admit) or verdict.label is None:
            raise SystemExit(f"unexpected verdict: {verdict}")
        policy.stamp(request, verdict)  # type: ignore[arg-type]
    full = (time.perf_counter() - start) / count
    calls = [CallInfo(f"v{i}", CENTRE, CALLEE) for i in range(count)]
    start = time.perf_counter()
    for value, call in zip(signed[count:], calls, strict=True):
        verifier.verify([value], call, now)
    alone = (time.perf_counter() - start) / count
    return plain * 1e6, full * 1e6, alone * 1e6


async def bench_afgw(
    rates: list[int],
    args: argparse.Namespace,
    work: Path,
    uas_port: int,
    *,
    label: str = "afgw",
    labels: Path | None = None,
    scenario: Scenario = builtin_uac,
) -> list[Step]:
    port = free_udp_tcp_port()
    config = work / f"gateway_{label}.yaml"
    config.write_text(gateway_config(port, labels, workers=args.workers))
    command = [sys.executable, "-m", "gateway.cli", "--log-level", "error", "run", "-c", str(config)]
    if args.workers > 1:
        command += ["--workers", str(args.workers)]
    async with process(*command, cwd=ROOT):
        if not await answers(port, 60.0, workers=args.workers):
            raise SystemExit(f"the gateway's {args.workers} worker(s) did not all answer")
        for _ in range(100):
            code, _ = await sipp(
                f"127.0.0.1:{port}", "-sf", str(ROOT / "tests/e2e/sipp/register.xml"), "-i", "127.0.0.1",
                "-p", str(free_udp_tcp_port()), "-s", "8613800000001", "-key", "contact_port", str(uas_port),
                "-m", "1", "-recv_timeout", "200", cwd=work,
            )  # fmt: skip
            if code == 0:
                break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit("the gateway did not answer REGISTER")
        try:
            return await sweep(label, f"127.0.0.1:{port}", rates, args, work, scenario)
        finally:
            if args.workers > 1:
                await drop_redis_keys()


async def drop_redis_keys() -> None:
    """Remove what the workers left in Redis: this run's keys only (REDIS_PREFIX)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis()
    try:
        keys = [key async for key in client.scan_iter(f"{REDIS_PREFIX}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def bench_kamailio(rates: list[int], args: argparse.Namespace, work: Path, uas_port: int) -> list[Step]:
    port = free_udp_tcp_port()
    rundir = work / "kamailio"
    rundir.mkdir()
    command = [
        "kamailio", "-f", str(ROOT / "bench/kamailio.cfg"), "-DD", "-E", "-Y", str(rundir),
        "-l", f"udp:127.0.0.1:{port}", "-A", f'UAS="sip:127.0.0.1:{uas_port}"',
        "-m", "512",  # shared memory (MB): the default 64 runs out of room for transactions past ~500 cps
        "-n", str(args.workers),  # UDP worker processes (children), as many as the gateway's
    ]  # fmt: skip
    async with process(*command, cwd=work):
        if not await answers(port):
            raise SystemExit("kamailio did not start")
        await asyncio.sleep(0.5)  # the probe reached one worker; let the others finish starting
        return await sweep("kamailio", f"127.0.0.1:{port}", rates, args, work)


def summary(name: str, steps: list[Step]) -> str:
    top = best(steps)
    if top is None:
        return f"  {name:13} no rate with under 1% failed calls"
    failed = next((s for s in steps if s.rate > top.rate and not s.clean), None)
    beyond = f"; fails {100 * failed.failed_share:.1f}% at {failed.rate} cps" if failed else "; never failed"
    return (
        f"  {name:13} {top.rate:5d} cps with {100 * top.failed_share:.2f}% failed, "
        f"INVITE->200 mean {top.mean:.2f} ms{beyond}"
    )


def side_by_side(results: dict[str, list[Step]]) -> list[str]:
    """One row per rate, one column per path: success share and INVITE->200 mean / p99 (ms)."""
    names = list(results)
    rates = sorted({s.rate for steps in results.values() for s in steps})
    lines = ["  rate cps  " + "".join(f"{n:>27}" for n in names)]
    for rate in rates:
        cells = []
        for name in names:
            step = next((s for s in results[name] if s.rate == rate), None)
            if step is None:
                cells.append(f"{'-':>27}")
            else:
                ok = 100 * (1 - step.failed_share)
                cells.append(f"{ok:6.1f}% {step.mean:7.2f}/{step.percentile(0.99):6.1f} ms".rjust(27))
        lines.append(f"  {rate:8d}  " + "".join(cells))
    return lines


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


async def main(args: argparse.Namespace) -> int:
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    paths = args.paths.split(",")
    results: dict[str, list[Step]] = {}
    with tempfile.TemporaryDirectory(prefix="sip_cps_") as tmp:
        work = Path(tmp)
        print(
            f"sipp uac -> [proxy] -> sipp uas on loopback; {os.cpu_count()} CPUs; load average "
            f"{os.getloadavg()[0]:.1f}; {args.workers} proxy worker(s); rates {rates}",
            flush=True,
        )
        centre = None
        if any(p.startswith("afgw-") for p in paths):
            centre = Centre(work)
            plain, full, alone = policy_cost(centre)
            print(
                f"STIR policy per INVITE, in process: ordinary call {plain:.1f} µs; labelled call from 96110 "
                f"{full:.1f} µs (strip, verify, stamp; Verifier.verify alone {alone:.1f} µs)",
                flush=True,
            )
        for path in paths:
            if path == "kamailio" and shutil.which("kamailio") is None:
                print("  kamailio  not installed (Debian package kamailio): skipped", flush=True)
                continue
            # A fresh UAS for each path, so that no path inherits another's leftovers.
            uas_port = free_udp_tcp_port()
            uas = ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-nostdin", "-buff_size", BUFFER]
            async with process(*uas, cwd=work):
                await asyncio.sleep(0.5)
                if path == "direct":
                    results[path] = await sweep("direct", f"127.0.0.1:{uas_port}", rates, args, work)
                elif path == "kamailio":
                    results[path] = await bench_kamailio(rates, args, work, uas_port)
                elif path == "afgw":
                    results[path] = await bench_afgw(rates, args, work, uas_port)
                elif path in ("afgw-noverify", "afgw-verify") and centre is not None:
                    labels = centre.labels if path == "afgw-verify" else None
                    results[path] = await bench_afgw(
                        rates, args, work, uas_port, label=path, labels=labels, scenario=centre.scenario
                    )
    print("\nPer rate, side by side (calls succeeded, INVITE->200 mean/p99):")
    for line in side_by_side(results):
        print(line)
    print("\nCeiling (highest rate with under 1% failed calls):")
    for name, steps in results.items():
        print(summary(name, steps))
    print(f"\nPrompt ceiling (under 1% failed calls and INVITE->200 under {PROMPT_MS:.0f} ms on average):")
    for name, steps in results.items():
        top = best(steps, prompt=True)
        shown = f"{top.rate:5d} cps, INVITE->200 mean {top.mean:.2f} ms" if top else "no such rate"
        print(f"  {name:13} {shown}")
    on, off = best(results.get("afgw-verify", [])), best(results.get("afgw-noverify", []))
    if on is not None and off is not None:
        print("\nVerification on vs off (INVITEs carrying an Identity header):")
        print(f"  highest clean rate {ratio(on.rate, off.rate)} ({on.rate} vs {off.rate} cps)")
        offs = {s.rate: s for s in results["afgw-noverify"] if s.clean}
        for step in results["afgw-verify"]:
            other = offs.get(step.rate)
            if step.clean and other is not None:
                print(
                    f"    {step.rate:5d} cps  INVITE->200 mean {step.mean:7.2f} vs {other.mean:5.2f} ms, "
                    f"p99 {step.percentile(0.99):6.1f} vs {other.percentile(0.99):5.1f} ms"
                )
    gw = best(results.get("afgw", []))
    print("\nRatios (afgw / reference):")
    for name in ("kamailio", "direct"):
        ref = best(results.get(name, []))
        if gw is None or ref is None:
            print(f"  vs {name}: n/a")
            continue
        print(f"  vs {name}: highest clean rate {ratio(gw.rate, ref.rate)} ({gw.rate} vs {ref.rate} cps)")
        gw_prompt, ref_prompt = best(results["afgw"], prompt=True), best(results[name], prompt=True)
        if gw_prompt is not None and ref_prompt is not None:
            print(
                f"  vs {name}: highest prompt rate {ratio(gw_prompt.rate, ref_prompt.rate)} "
                f"({gw_prompt.rate} vs {ref_prompt.rate} cps)"
            )
        # Latency at every rate both ran without a failure: near its knee a proxy queues, so one
        # figure at the highest common rate would hide the rates where it is comfortable.
        refs = {r.rate: r for r in results[name] if r.clean}
        for step in results["afgw"]:
            other = refs.get(step.rate)
            if step.clean and other is not None:
                print(
                    f"    {step.rate:5d} cps  INVITE->200 mean {step.mean:7.2f} vs {other.mean:5.2f} ms, "
                    f"p99 {step.percentile(0.99):6.1f} vs {other.percentile(0.99):5.1f} ms"
                )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # steps of at most a quarter up to 2,400 calls/s, so that a ceiling is known to within that
    parser.add_argument(
        "--rates", default="100,200,400,500,600,700,800,1000,1200,1400,1600,2000,2400,3200,4000,4800,6400,8000"
    )
    parser.add_argument("--seconds", type=int, default=5, help="calls per rate = rate x seconds (capped)")
    parser.add_argument("--max-calls", type=int, default=4000)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gateway processes (afgw run --workers) and Kamailio UDP children (-n), the same number",
    )
    parser.add_argument(
        "--paths",
        default="direct,kamailio,afgw,afgw-noverify,afgw-verify",
        help="which of direct,kamailio,afgw,afgw-noverify,afgw-verify to measure",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
