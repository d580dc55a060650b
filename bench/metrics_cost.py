"""What /metrics costs a message on the relay's hot path, measured in-process with no sockets.

Two gateway processes, one counting and one not, compared on the full relay in turns, move by a third
from one run to the next on a busy machine, more than the cost they look for.
Here each step is timed alone (CPU time of this process, best of several repeats), side by side with
and without the counting:

- an SMPP session (the sans-IO core) taking a submit_sm off the wire and putting its submit_sm_resp on
  it, without a wire tap and with the gateway's (``SmppTally``): a relayed message crosses two sessions
  and four PDUs, so it pays twice this difference;
- one latency observation (``afgw_smpp_submit_seconds``) and one decision count, as the relay makes
  them per message, beside prometheus_client's own Counter and Histogram doing the same;

and prints the cost per relayed message as a share of what the relay spends on one (``--relay-rate``,
the gateway's msg/s on one core in bench/smpp_throughput.py).

    python bench/metrics_cost.py [--pdus 200000] [--repeat 5] [--relay-rate 25000]
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as ClientCounter
from prometheus_client import Histogram as ClientHistogram

from gateway.metrics import LATENCY_BUCKETS, Counter, Histogram, SmppTally
from protocols.smpp.codec import encode
from protocols.smpp.pdu import BindTransceiver, SubmitSm, SubmitSmResp, Tlv, response_to
from protocols.smpp.session import Role, SessionConfig, SmppSession


def bound_session(tap: SmppTally | None) -> SmppSession:
    session = SmppSession(Role.SMSC, clock=lambda: 0.0, config=SessionConfig(window=10, inbound_window=10))
    session.tap = tap
    session.receive_data(encode(BindTransceiver(system_id="bench", password="pw"), 1))
    bind = session.next_event()
    assert bind is not None
    session.send(response_to(bind))
    return session


def relay_step(tap: SmppTally | None, pdus: int) -> Callable[[], None]:
    """A function that takes ``pdus`` submit_sm off the wire and answers each, on one bound session."""
    session = bound_session(tap)
    submit = SubmitSm(
        source_addr="10690",
        destination_addr="8613800000001",
        data_coding=8,
        short_message="您的验证码是 123456".encode("utf-16-be"),
        tlvs=(Tlv(0x1400, b"vendor"),),
    )
    wire = b"".join(encode(submit, seq) for seq in range(2, 2 + pdus))
    resp = SubmitSmResp(message_id="1A2B3C")

    def run() -> None:
        session.receive_data(wire)
        for seq in range(2, 2 + pdus):
            event = session.next_event()
            assert event is not None
            session.send(resp, sequence_number=seq)

    return run


def best(fn: Callable[[], None], repeat: int) -> float:
    # CPU time of this process: on a machine shared with other work, wall time measures the others.
    return min(timeit.Timer(fn, timer=time.process_time).repeat(number=1, repeat=repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdus", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--relay-rate", type=float, default=25_000.0, help="the gateway's msg/s, for the share")
    args = parser.parse_args()
    n = args.pdus

    # Sessions are made afresh per repeat: a session's sequence numbers are used once.
    def timed(tap_factory: Callable[[], SmppTally | None]) -> float:
        times = []
        for _ in range(args.repeat):
            times.append(best(relay_step(tap_factory(), n), 1))
        return min(times) / n

    bare = timed(lambda: None)
    tapped = timed(lambda: SmppTally("esme"))

    registry = CollectorRegistry()
    ours_hist, ours_counter = Histogram("h_seconds", "h"), Counter("c_total", "c", ("channel", "action", "category"))
    theirs_hist = ClientHistogram("h_seconds", "h", buckets=LATENCY_BUCKETS, registry=registry)
    theirs_counter = ClientCounter("c_total", "c", ("channel", "action", "category"), registry=registry)
    child = theirs_counter.labels("sms", "pass", "none")
    labels = ("sms", "pass", "none")
    per_call = {
        "Histogram.observe (gateway.metrics)": best(lambda: [ours_hist.observe(0.003) for _ in range(n)], args.repeat),
        "Counter.inc (gateway.metrics)": best(lambda: [ours_counter.inc(labels) for _ in range(n)], args.repeat),
        "Histogram.observe (prometheus_client)": best(
            lambda: [theirs_hist.observe(0.003) for _ in range(n)], args.repeat
        ),
        "Counter child .inc (prometheus_client)": best(lambda: [child.inc() for _ in range(n)], args.repeat),
        "empty loop (for reference)": best(lambda: [None for _ in range(n)], args.repeat),
    }
    print(f"python {sys.version.split()[0]}, {n} PDUs or calls per repeat, best of {args.repeat}")
    print(f"{'one session: submit_sm in, resp out':<44}{'us/message':>12}")
    print(f"{'  without a wire tap':<44}{bare * 1e6:>12.3f}")
    print(f"{'  with the gateway tap (2 PDUs counted)':<44}{tapped * 1e6:>12.3f}")
    print(f"{'  ratio with/without':<44}{tapped / bare:>12.3f}")
    print(f"{'one call':<44}{'us':>12}")
    for name, total in per_call.items():
        print(f"{'  ' + name:<44}{total / n * 1e6:>12.3f}")
    loop = per_call["empty loop (for reference)"] / n
    tap_cost = 2 * (tapped - bare)  # the ESME session and the SMSC bind's
    observe = per_call["Histogram.observe (gateway.metrics)"] / n - loop
    count = per_call["Counter.inc (gateway.metrics)"] / n - loop
    per_message = tap_cost + observe + count
    relay = 1.0 / args.relay_rate
    print()
    print(f"per relayed message: 4 PDUs counted + 1 latency + 1 decision = {per_message * 1e6:.3f} us")
    share = per_message / relay
    print(f"share of the relay's {relay * 1e6:.1f} us per message (at {args.relay_rate:.0f} msg/s): {share:.1%}")
    client = (
        per_call["Histogram.observe (prometheus_client)"] / n
        + 5 * per_call["Counter child .inc (prometheus_client)"] / n
    ) - 6 * loop
    print(f"the same with prometheus_client's own counters and histogram: {client * 1e6:.3f} us ({client / relay:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
