"""The proxy's parts on a fake clock: nonces, rate limits, the location service, dialogs, timers."""

from __future__ import annotations

import asyncio

import pytest

from gateway.sip.auth import AuthOutcome, DigestAuthenticator
from gateway.sip.dialogs import DialogRoute, DialogTable, Leg
from gateway.sip.location import Binding, LocationFull, LocationService
from gateway.sip.ratelimit import SourceLimiter, Verdict
from gateway.sip.registrar import contact_flow
from gateway.sip.timers import TimerQueue
from gateway.sip.transport import Flow
from protocols.sip import Headers, Request, parse_uri
from protocols.sip.digest import authorization, parse_challenge

URI = "sip:127.0.0.1"


def register_with(auth: DigestAuthenticator, challenge: str, *, password: str = "pw", nc: int = 1) -> Request:
    req = Request("REGISTER", parse_uri(URI), Headers([("To", "<sip:alice@127.0.0.1>")]))
    req.headers.add(
        "Authorization",
        authorization(
            parse_challenge(challenge),
            username="alice",
            password=password,
            method="REGISTER",
            uri=URI,
            cnonce="c",
            nc=nc,
        ),
    )
    return req


@pytest.mark.parametrize("offered", [0, 1], ids=["SHA-256", "MD5"])
def test_a_nonce_goes_stale_on_the_clock_and_is_bound_to_its_source(offered):
    auth = DigestAuthenticator("realm", {"alice": "pw"}, nonce_ttl=30)
    challenge = auth.challenges(100.0, "10.0.0.1")[offered]
    assert auth.check(register_with(auth, challenge), "10.0.0.1", 110.0).ok
    assert auth.check(register_with(auth, challenge, nc=2), "10.0.0.2", 110.0).outcome is AuthOutcome.FAILED
    assert auth.check(register_with(auth, challenge, nc=3), "10.0.0.1", 131.0).outcome is AuthOutcome.STALE
    # Stale is said only to the right password: a wrong one is a plain failure.
    late_wrong = register_with(auth, challenge, password="no", nc=4)
    assert auth.check(late_wrong, "10.0.0.1", 131.0).outcome is AuthOutcome.FAILED


def test_forged_nonces_unknown_schemes_and_missing_credentials_fail_closed():
    auth = DigestAuthenticator("realm", {"alice": "pw"})
    other = DigestAuthenticator("realm", {"alice": "pw"})  # another secret: its nonces are forgeries
    assert auth.check(register_with(auth, other.challenges(0.0, "h")[0]), "h", 1.0).outcome is AuthOutcome.FAILED
    bare = Request("REGISTER", parse_uri(URI), Headers())
    assert auth.check(bare, "h", 0.0).outcome is AuthOutcome.MISSING
    weird = Request("REGISTER", parse_uri(URI), Headers([("Authorization", "NoOneKnowsThisScheme opaque-data=here")]))
    assert auth.check(weird, "h", 0.0).outcome is AuthOutcome.FAILED
    broken = Request("REGISTER", parse_uri(URI), Headers([("Authorization", 'Digest username="alice, realm=')]))
    assert auth.check(broken, "h", 0.0).outcome is AuthOutcome.FAILED


def test_challenges_offer_sha256_first_then_md5_with_one_nonce():
    offered = [parse_challenge(c) for c in DigestAuthenticator("realm", {}).challenges(5.0, "h")]
    assert [c.algorithm for c in offered] == ["SHA-256", "MD5"]
    assert offered[0].nonce == offered[1].nonce
    assert all(c.qop == ("auth",) for c in offered)


@pytest.mark.parametrize("now", [0.0, 1.0, 1_700_000_000.123, 86_400.5, 12_345.678])
def test_a_nonce_shows_no_clock_and_nonces_share_nothing_fixed(now):
    auth = DigestAuthenticator("realm", {"alice": "pw"})
    nonces = [parse_challenge(auth.challenges(now, "h")[0]).nonce for _ in range(24)]
    later = [parse_challenge(auth.challenges(now + 1000.0, "h")[0]).nonce for _ in range(24)]
    for nonce in nonces + later:
        for shown in (int(now), int(now * 1000), int(now + 1000), int((now + 1000) * 1000)):
            # Six characters or more, so that a random nonce cannot spell one by chance.
            readable = [text for text in (format(shown, "x"), format(shown, "X"), str(shown)) if len(text) >= 6]
            assert not [text for text in readable if text in nonce]
    # Nonces issued in the same millisecond, or a thousand seconds apart, have no character in
    # common at any position: nothing in them is derived from the clock.
    for position in range(len(nonces[0])):
        assert len({n[position] for n in nonces + later}) > 1


def test_an_algorithm_not_offered_is_refused_even_with_the_right_password():
    md5_only = DigestAuthenticator("realm", {"alice": "pw"}, algorithms=("MD5",))
    offered = md5_only.challenges(0.0, "h")
    assert [parse_challenge(c).algorithm for c in offered] == ["MD5"]
    sha256 = offered[0].replace("algorithm=MD5", "algorithm=SHA-256")
    assert md5_only.check(register_with(md5_only, sha256), "h", 1.0).outcome is AuthOutcome.FAILED
    assert md5_only.check(register_with(md5_only, offered[0]), "h", 1.0).ok


def test_a_tampered_nonce_fails_at_every_position():
    auth = DigestAuthenticator("realm", {"alice": "pw"}, nonce_ttl=30)
    challenge = auth.challenges(100.0, "h")[0]
    nonce = parse_challenge(challenge).nonce
    for i, char in enumerate(nonce):
        forged = nonce[:i] + ("A" if char != "A" else "B") + nonce[i + 1 :]
        request = register_with(auth, challenge.replace(nonce, forged))
        assert auth.check(request, "h", 101.0).outcome is AuthOutcome.FAILED
    for forged in (nonce[:-1], nonce + "A", "x" * len(nonce), nonce[::-1]):
        request = register_with(auth, challenge.replace(nonce, forged))
        assert auth.check(request, "h", 101.0).outcome is AuthOutcome.FAILED
    assert auth.check(register_with(auth, challenge), "h", 101.0).ok


def test_the_rate_limiter_serves_then_throttles_then_drops_and_stays_bounded():
    limiter = SourceLimiter(rate=10, burst=10, hard_limit=15, max_sources=100)
    verdicts = [limiter.check("10.0.0.1", 0.0) for _ in range(30)]
    assert verdicts.count(Verdict.ALLOW) == 10
    assert verdicts.count(Verdict.THROTTLE) == 5
    assert verdicts.count(Verdict.DROP) == 15
    assert limiter.check("10.0.0.2", 0.0) is Verdict.ALLOW  # another source is unaffected
    assert limiter.check("10.0.0.1", 1.0) is Verdict.ALLOW  # and the first recovers with time
    for i in range(1000):
        limiter.check(f"10.1.{i // 256}.{i % 256}", 2.0)
    assert len(limiter) == 100


def binding(port: int, expires_at: float) -> Binding:
    return Binding(parse_uri(f"sip:a@127.0.0.1:{port}"), Flow("UDP", "127.0.0.1", port), expires_at, "cid", 1)


def test_location_bindings_expire_on_the_clock_and_are_bounded():
    location = LocationService(max_aors=2, max_contacts=2)
    location.update("a", binding(1, 100.0))
    location.update("a", binding(2, 50.0))
    with pytest.raises(LocationFull):
        location.update("a", binding(3, 100.0))
    location.update("b", binding(4, 100.0))
    with pytest.raises(LocationFull):
        location.update("c", binding(5, 100.0))
    assert [b.flow.port for b in location.lookup("a", 10.0)] == [1, 2]
    assert [b.flow.port for b in location.lookup("a", 60.0)] == [1]
    assert location.by_contact(parse_uri("sip:a@127.0.0.1:1"), 60.0) is not None
    assert location.by_contact(parse_uri("sip:a@127.0.0.1:2"), 60.0) is None
    location.sweep(200.0)
    assert len(location) == 0


def test_contacts_are_reached_where_they_say_unless_behind_a_nat():
    local = Flow("UDP", "127.0.0.1", 4000)
    assert contact_flow(parse_uri("sip:a@127.0.0.1:5070"), local) == Flow("UDP", "127.0.0.1", 5070)
    nat = Flow("UDP", "8.8.4.4", 34567)  # a public source (pure computation: nothing is sent)
    assert contact_flow(parse_uri("sip:a@192.168.1.5:5060"), nat) == nat
    assert contact_flow(parse_uri("sip:a@phone.example.com"), local) == local  # never resolved
    tcp = Flow("TCP", "127.0.0.1", 4001)
    assert contact_flow(parse_uri("sip:a@127.0.0.1:9;transport=tcp"), tcp) == tcp


def test_dialogs_expire_linger_after_bye_and_are_bounded():
    table = DialogTable(max_dialogs=2, timeout=100.0, linger=10.0)
    flow = Flow("UDP", "127.0.0.1", 1)

    def route(call_id: str) -> DialogRoute:
        return DialogRoute(call_id, Leg("x", flow, None), Leg("y", flow, None), expires_at=100.0)

    first = route("1")
    table.record(first)
    assert table.get("1", "y", "x", 0.0) is first  # either tag order
    assert first.towards("x") is first.callee
    assert first.towards("y") is first.caller
    table.ending(first, 50.0)
    table.touch(first, 55.0)  # a late request does not revive an ended dialog
    assert table.get("1", "x", "y", 61.0) is None
    for call_id in ("2", "3", "4"):
        table.record(route(call_id))
    assert len(table) == 2


async def test_the_timer_queue_fires_in_order_on_the_loop_clock():
    loop = asyncio.get_running_loop()
    queue = TimerQueue(loop)
    fired: list[str] = []
    done = asyncio.Event()
    now = loop.time()
    queue.schedule(now + 0.02, lambda t: (fired.append("late"), done.set()))
    queue.schedule(now + 0.01, lambda t: fired.append("early"))
    queue.schedule(now, lambda t: 1 / 0)  # a failing callback does not stop the others
    await done.wait()
    assert fired == ["early", "late"]
    queue.close()
