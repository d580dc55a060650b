"""``afgw smsc``: what it prints for each message it stores, the mobile-originated messages it can
inject from the command line, and what its --help says about receipts."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from gateway.cli import build_parser, main
from protocols.smpp import text
from protocols.smpp.constants import CommandStatus
from simulator.esme import SimulatedEsme
from simulator.smsc import MoMessage, run_smsc
from tests.conftest import free_port
from tests.e2e.smpp_harness import eventually


@asynccontextmanager
async def smsc_cli(mo: Sequence[MoMessage] = ()) -> AsyncIterator[tuple[int, io.StringIO]]:
    """run_smsc as ``afgw smsc`` runs it, printing into a buffer; yields its port and the buffer."""
    port, out = free_port(), io.StringIO()
    task = asyncio.get_running_loop().create_task(
        run_smsc("127.0.0.1", port, system_id="afgw", password="secret", mo=mo, mo_retry=0.05, out=out)
    )
    try:
        await eventually(lambda: "listening" in out.getvalue())
        yield port, out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def printed(out: io.StringIO, prefix: str) -> list[str]:
    return [line for line in out.getvalue().splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize(
    "destinations",
    [
        ["8613800000001", "8613800000002", "8613800000001"],
        ["8613800000001", "8613800000001", "8613800000001"],
        ["8613800000003", "8613800000002", "8613800000001", "8613800000002", "8613800000003", "8613800000001"],
    ],
)
async def test_every_stored_message_is_printed_once_in_order(destinations: list[str]) -> None:
    async with smsc_cli() as (port, out):
        esme = SimulatedEsme("127.0.0.1", port, "afgw", "secret", bind_type="transmitter")
        await esme.bind()
        expected = []
        for n, destination in enumerate(destinations):
            message = f"您的验证码是 {n:06d}"
            [resp] = await esme.submit("10690", destination, message)
            expected.append(f"stored {resp.message_id}: 10690 -> {destination}: {message}")  # type: ignore[attr-defined]
        await eventually(lambda: len(printed(out, "stored ")) >= len(expected))
        await esme.unbind()
    assert printed(out, "stored ") == expected


async def test_a_long_message_is_printed_once_when_whole() -> None:
    long = "【银行】" + "您尾号1234的账户于今日转入人民币5000元，余额12345元。" * 4
    async with smsc_cli() as (port, out):
        esme = SimulatedEsme("127.0.0.1", port, "afgw", "secret", bind_type="transmitter")
        await esme.bind()
        parts = await esme.submit("10690", "8613800000001", long)
        [short] = await esme.submit("10690", "8613800000001", "短信")
        await eventually(lambda: len(printed(out, "stored ")) >= 2)
        await esme.unbind()
    assert len(parts) > 1
    assert printed(out, "stored ") == [
        f"stored {parts[-1].message_id}: 10690 -> 8613800000001: {long}",  # type: ignore[attr-defined]
        f"stored {short.message_id}: 10690 -> 8613800000001: 短信",  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize(
    "specs",
    [
        ["8613800000051:10690:TD"],
        ["8613800000051:10690:我已收到，谢谢", "8613800000052:10691:time 10:30: ok"],
        ["8613800000051:10690:", "8613800000051:10690:退订"],
    ],
)
async def test_mo_messages_from_the_command_line_reach_a_receiver(specs: list[str]) -> None:
    messages = [MoMessage.parse(spec) for spec in specs]
    async with smsc_cli(messages) as (port, out):
        await asyncio.sleep(0.1)
        assert printed(out, "mo ") == []  # nothing is sent before something can receive it
        esme = SimulatedEsme("127.0.0.1", port, "afgw", "secret", bind_type="receiver")
        await esme.bind()
        await eventually(lambda: len(printed(out, "mo ")) == len(messages))
        await esme.unbind()
    got = [(d.source_addr, d.destination_addr, text.decode(d.short_message, d.data_coding)) for d in esme.delivered]
    assert got == [(m.source, m.destination, m.text) for m in messages]
    assert printed(out, "mo ") == [
        f"mo delivered: {m.source} -> {m.destination}: {m.text} (ESME_ROK)" for m in messages
    ]


@pytest.mark.parametrize(
    "status", [CommandStatus.ESME_RX_P_APPN, CommandStatus.ESME_RINVDSTADR, CommandStatus.ESME_RSYSERR]
)
async def test_an_mo_refused_for_good_prints_the_status(status: CommandStatus) -> None:
    async with smsc_cli([MoMessage.parse("8613800000051:10690:hello")]) as (port, out):
        esme = SimulatedEsme("127.0.0.1", port, "afgw", "secret", deliver_status=status)
        await esme.bind()
        await eventually(lambda: printed(out, "mo "))
        await esme.unbind()
    assert len(esme.delivered) == 1
    assert printed(out, "mo ") == [f"mo refused: 8613800000051 -> 10690: hello ({status.name})"]


@pytest.mark.parametrize(
    "status", [CommandStatus.ESME_RX_T_APPN, CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL]
)
async def test_an_mo_refused_for_now_is_retried_until_delivered(status: CommandStatus) -> None:
    async with smsc_cli([MoMessage.parse("8613800000051:10690:hello"), MoMessage.parse("1:2:next")]) as (port, out):
        esme = SimulatedEsme("127.0.0.1", port, "afgw", "secret", deliver_status=status)
        await esme.bind()
        await eventually(lambda: len(esme.delivered) >= 3)  # the first, then at least two retries
        esme.deliver_status = CommandStatus.ESME_ROK
        await eventually(lambda: len(printed(out, "mo ")) == 3)
        await esme.unbind()
    assert printed(out, "mo ") == [
        f"mo deferred: 8613800000051 -> 10690: hello ({status.name}); retrying every 0.05 s",
        "mo delivered: 8613800000051 -> 10690: hello (ESME_ROK)",
        "mo delivered: 1 -> 2: next (ESME_ROK)",
    ]


@pytest.mark.parametrize("spec", ["8613800000051", "8613800000051:10690", ":10690:x", "8613800000051::x"])
def test_a_bad_mo_option_is_refused(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["smsc", "--mo", spec])
    assert exc.value.code == 2
    assert f"argument --mo: expected FROM:TO:TEXT, got {spec!r}" in capsys.readouterr().err


def test_help_says_how_receipts_and_mo_work(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["smsc", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for words in (
        "stored <message_id>: <from> -> <to>: <text>",
        "registered_delivery asks for one",
        "stat:DELIVRD",
        "receipted_message_id",
        "on the bind that submitted the message",
        "--receipt-delay SECONDS",
        "--mo FROM:TO:TEXT",
        "as soon as a receiver or transceiver bind can take it",
        "is retried every --mo-retry seconds",
    ):
        assert words in help_text, words


@pytest.mark.parametrize(
    ("text_", "fits"), [("a" * 160, True), ("a" * 161, False), ("短" * 70, True), ("短" * 71, False)]
)
def test_an_mo_text_must_fit_one_short_message(capsys: pytest.CaptureFixture[str], text_: str, fits: bool) -> None:
    spec = f"8613800000051:10690:{text_}"
    if fits:
        assert build_parser().parse_args(["smsc", "--mo", spec]).mo == [MoMessage("8613800000051", "10690", text_)]
        return
    with pytest.raises(SystemExit):
        main(["smsc", "--mo", spec])
    assert "argument --mo: TEXT must fit one short message" in capsys.readouterr().err
