"""RFC 3261 section 17 transactions driven by a fake clock: timers by letter, state tables, keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import LocalProtocolError
from protocols.sip import (
    AckReceived,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransactionKey,
    Headers,
    Input,
    LegacyServerTransactionKey,
    Request,
    RequestRetransmitted,
    Response,
    ResponseReceived,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransactionKey,
    TimedOut,
    TimerSettings,
    TransactionState,
    TransactionTerminated,
    TransportError,
    build_cancel,
    cancel_target_key,
    client_transaction_key,
    create_response,
    is_rfc3261_branch,
    new_branch,
    parse_uri,
    server_transaction_key,
)

S = TransactionState
Transaction = (
    ClientInviteTransaction | ClientNonInviteTransaction | ServerInviteTransaction | ServerNonInviteTransaction
)


def make_request(method: str = "INVITE", branch: str = "z9hG4bK776asdhds", cseq: int = 314159) -> Request:
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP pc33.atlanta.example.com;branch={branch}"),
            ("Via", "SIP/2.0/UDP bigbox3.site3.example.com;branch=z9hG4bKnashds8"),
            ("Max-Forwards", "70"),
            ("Route", "<sip:p1.example.com;lr>"),
            ("To", "Bob <sip:bob@biloxi.example.com>"),
            ("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774"),
            ("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
        ]
    )
    return Request(method, parse_uri("sip:bob@biloxi.example.com"), headers)


def respond(request: Request, status: int, to_tag: str | None = "a6c85cf") -> Response:
    return create_response(request, status, to_tag=to_tag if status > 100 else None)


def ack_for(invite: Request, response: Response) -> Request:
    ack = make_request("ACK", branch=invite.top_via.branch or "", cseq=invite.cseq.number)
    ack.headers.set("To", response.headers.get("To") or "")
    return ack


def run_timers(tx: Transaction, until: float) -> list[tuple[float, list[object], list[Request | Response]]]:
    """Advance a fake clock from timer to timer; record (time, events, messages sent) at each."""
    log: list[tuple[float, list[object], list[Request | Response]]] = []
    while (deadline := tx.get_timer()) is not None and deadline <= until:
        events = tx.handle_timer(deadline)
        log.append((deadline, list(events), tx.messages_to_send()))
    return log


def approx_times(log: list[tuple[float, list[object], list[Request | Response]]]) -> list[float]:
    return [round(t, 6) for t, _, sent in log if sent]


# --- client INVITE (17.1.1) -------------------------------------------------------------------------


def test_client_invite_udp_retransmits_with_doubling_until_timer_b() -> None:
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    assert tx.state is S.CALLING
    assert tx.send_request(0.0) == []
    assert tx.messages_to_send() == [invite]
    assert tx.timer_a == 0.5
    assert tx.timer_b == 32.0
    log = run_timers(tx, 100.0)
    # Retransmissions at T1, 2*T1, 4*T1 ... intervals: 0.5, 1, 2, 4, 8, 16.
    assert approx_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(sent == [invite] for _, _, sent in log if sent)
    assert log[-1][0] == 32.0
    assert log[-1][1] == [TimedOut("B"), TransactionTerminated()]
    assert tx.state is S.TERMINATED
    assert tx.get_timer() is None


def test_client_invite_provisional_stops_retransmissions_and_timer_b() -> None:
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    tx.messages_to_send()
    trying = respond(invite, 100)
    assert tx.receive_response(trying, 0.2) == [ResponseReceived(trying)]
    assert tx.state is S.PROCEEDING
    assert tx.timer_a is None
    assert tx.timer_b is None
    assert tx.get_timer() is None
    ringing = respond(invite, 180)
    assert tx.receive_response(ringing, 1.0) == [ResponseReceived(ringing)]
    assert tx.state is S.PROCEEDING
    assert tx.messages_to_send() == []


def test_client_invite_non_2xx_final_is_acked_and_waits_timer_d() -> None:
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    tx.messages_to_send()
    busy = respond(invite, 486)
    assert tx.receive_response(busy, 1.0) == [ResponseReceived(busy)]
    assert tx.state is S.COMPLETED
    (ack,) = tx.messages_to_send()
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.headers.get_all("Via") == ["SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"]
    assert ack.cseq.number == invite.cseq.number
    assert ack.cseq.method == "ACK"
    assert ack.to_tag == "a6c85cf"
    assert ack.from_tag == "1928301774"
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
    assert ack.call_id == invite.call_id
    assert tx.timer_a is None
    assert tx.timer_b is None
    assert tx.timer_d == 33.0
    # A retransmitted final response is answered with the same ACK and not passed up.
    assert tx.receive_response(busy, 2.0) == []
    assert tx.messages_to_send() == [ack]
    # Provisional and 2xx responses are ignored now.
    assert tx.receive_response(respond(invite, 180), 3.0) == []
    log = run_timers(tx, 100.0)
    assert [(t, e) for t, e, _ in log] == [(33.0, [TransactionTerminated()])]
    assert tx.state is S.TERMINATED


def test_client_invite_2xx_terminates_and_the_tu_acks() -> None:
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    tx.messages_to_send()
    tx.receive_response(respond(invite, 180), 0.1)
    ok = respond(invite, 200)
    assert tx.receive_response(ok, 2.0) == [ResponseReceived(ok), TransactionTerminated()]
    assert tx.state is S.TERMINATED
    assert tx.messages_to_send() == []  # no ACK from the transaction for a 2xx
    assert tx.receive_response(ok, 2.5) == []  # later 2xx go to the core, statelessly


def test_client_invite_reliable_has_no_timer_a_and_zero_timer_d() -> None:
    invite = make_request()
    tx = ClientInviteTransaction(invite, reliable=True)
    tx.send_request(0.0)
    assert tx.timer_a is None
    assert tx.timer_b == 32.0
    assert run_timers(tx, 31.9) == []
    busy = respond(invite, 603)
    assert tx.receive_response(busy, 5.0) == [ResponseReceived(busy), TransactionTerminated()]
    sent = tx.messages_to_send()
    assert [m.method for m in sent if isinstance(m, Request)] == ["INVITE", "ACK"]
    assert tx.state is S.TERMINATED
    assert tx.get_timer() is None


def test_client_invite_reliable_timer_b() -> None:
    tx = ClientInviteTransaction(make_request(), reliable=True)
    tx.send_request(10.0)
    tx.messages_to_send()
    log = run_timers(tx, 100.0)
    assert [(t, e) for t, e, _ in log] == [(42.0, [TimedOut("B"), TransactionTerminated()])]


def test_late_handle_timer_fires_timers_in_order() -> None:
    tx = ClientInviteTransaction(make_request())
    tx.send_request(0.0)
    tx.messages_to_send()
    events = tx.handle_timer(1000.0)
    assert events == [TimedOut("B"), TransactionTerminated()]
    assert len(tx.messages_to_send()) == 1  # one catch-up retransmission, not a burst


# --- client non-INVITE (17.1.2) ------------------------------------------------------------------------


def test_client_non_invite_udp_timer_e_capped_at_t2_until_timer_f() -> None:
    options = make_request("OPTIONS")
    tx = ClientNonInviteTransaction(options)
    assert tx.state is S.TRYING
    tx.send_request(0.0)
    assert tx.messages_to_send() == [options]
    assert tx.timer_e == 0.5
    assert tx.timer_f == 32.0
    log = run_timers(tx, 100.0)
    # Intervals 0.5, 1, 2, 4, 4, 4 ...
    assert approx_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (32.0, [TimedOut("F"), TransactionTerminated()], [])
    assert tx.state is S.TERMINATED


def test_client_non_invite_proceeding_retransmits_every_t2() -> None:
    register = make_request("REGISTER")
    tx = ClientNonInviteTransaction(register)
    tx.send_request(0.0)
    tx.messages_to_send()
    assert approx_times(run_timers(tx, 0.7)) == [0.5]  # next one due at 1.5
    trying = respond(register, 100)
    assert tx.receive_response(trying, 0.7) == [ResponseReceived(trying)]
    assert tx.state is S.PROCEEDING
    log = run_timers(tx, 12.0)
    assert approx_times(log) == [1.5, 5.5, 9.5]
    ok = respond(register, 200)
    assert tx.receive_response(ok, 12.0) == [ResponseReceived(ok)]
    assert tx.state is S.COMPLETED
    assert tx.timer_e is None
    assert tx.timer_f is None
    assert tx.timer_k == 17.0
    assert tx.receive_response(ok, 13.0) == []  # retransmissions absorbed
    assert run_timers(tx, 100.0) == [(17.0, [TransactionTerminated()], [])]


def test_client_non_invite_reliable() -> None:
    bye = make_request("BYE")
    tx = ClientNonInviteTransaction(bye, reliable=True)
    tx.send_request(0.0)
    assert tx.timer_e is None
    assert tx.timer_f == 32.0
    ok = respond(bye, 200)
    assert tx.receive_response(ok, 1.0) == [ResponseReceived(ok), TransactionTerminated()]
    assert tx.state is S.TERMINATED


def test_custom_t1_t2_t4() -> None:
    timers = TimerSettings(t1=0.1, t2=0.4, t4=2.0)
    tx = ClientNonInviteTransaction(make_request("MESSAGE"), timers=timers)
    tx.send_request(0.0)
    log = run_timers(tx, 100.0)
    assert approx_times(log) == [
        0.1,
        0.3,
        0.7,
        1.1,
        1.5,
        1.9,
        2.3,
        2.7,
        3.1,
        3.5,
        3.9,
        4.3,
        4.7,
        5.1,
        5.5,
        5.9,
        6.3,
    ]
    assert log[-1][0] == pytest.approx(6.4)
    assert timers.timer_b == pytest.approx(6.4)
    assert timers.timer_k(False) == 2.0
    assert timers.timer_d(False) == 32.0


# --- server INVITE (17.2.1) -----------------------------------------------------------------------------


def test_server_invite_retransmits_final_on_timer_g_until_timer_h() -> None:
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    assert tx.state is S.PROCEEDING
    trying = respond(invite, 100)
    assert tx.send_response(trying, 0.0) == []
    assert tx.messages_to_send() == [trying]
    # A retransmitted INVITE gets the last provisional again.
    assert tx.receive_request(invite, 0.1) == [RequestRetransmitted(invite)]
    assert tx.messages_to_send() == [trying]
    busy = respond(invite, 486)
    tx.send_response(busy, 1.0)
    assert tx.state is S.COMPLETED
    assert tx.messages_to_send() == [busy]
    assert tx.timer_g == 1.5
    assert tx.timer_h == 33.0
    log = run_timers(tx, 100.0)
    times = approx_times(log)
    assert times == [1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5]
    assert all(sent == [busy] for _, _, sent in log if sent)
    assert log[-1] == (33.0, [TimedOut("H"), TransactionTerminated()], [])
    assert tx.state is S.TERMINATED


def test_server_invite_ack_confirms_then_timer_i() -> None:
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    busy = respond(invite, 404)
    tx.send_response(busy, 0.0)
    tx.messages_to_send()
    # The INVITE again, while COMPLETED: the final response again.
    assert tx.receive_request(invite, 0.2) == [RequestRetransmitted(invite)]
    assert tx.messages_to_send() == [busy]
    ack = ack_for(invite, busy)
    assert server_transaction_key(ack) == tx.key
    assert tx.receive_request(ack, 0.3) == [AckReceived(ack)]
    assert tx.state is S.CONFIRMED
    assert tx.timer_g is None
    assert tx.timer_h is None
    assert tx.timer_i == 5.3
    assert tx.receive_request(ack, 0.4) == []  # absorbed
    assert tx.messages_to_send() == []
    assert run_timers(tx, 100.0) == [(5.3, [TransactionTerminated()], [])]


def test_server_invite_2xx_terminates() -> None:
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    tx.send_response(respond(invite, 180), 0.0)
    assert tx.send_response(respond(invite, 200), 1.0) == [TransactionTerminated()]
    assert tx.state is S.TERMINATED
    with pytest.raises(LocalProtocolError):
        tx.send_response(respond(invite, 200), 2.0)


def test_server_invite_reliable_has_no_timer_g_and_zero_timer_i() -> None:
    invite = make_request()
    tx = ServerInviteTransaction(invite, reliable=True)
    busy = respond(invite, 500)
    tx.send_response(busy, 0.0)
    assert tx.timer_g is None
    assert tx.timer_h == 32.0
    ack = ack_for(invite, busy)
    assert tx.receive_request(ack, 1.0) == [AckReceived(ack), TransactionTerminated()]
    assert tx.state is S.TERMINATED


def test_server_invite_reliable_timer_h() -> None:
    invite = make_request()
    tx = ServerInviteTransaction(invite, reliable=True)
    tx.send_response(respond(invite, 480), 0.0)
    tx.messages_to_send()
    assert run_timers(tx, 100.0) == [(32.0, [TimedOut("H"), TransactionTerminated()], [])]


def test_server_discards_a_second_final_response() -> None:
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    tx.send_response(respond(invite, 486), 0.0)
    tx.messages_to_send()
    assert tx.send_response(respond(invite, 500), 0.1) == []
    assert tx.messages_to_send() == []


# --- server non-INVITE (17.2.2) --------------------------------------------------------------------------


def test_server_non_invite_trying_absorbs_then_timer_j() -> None:
    register = make_request("REGISTER")
    tx = ServerNonInviteTransaction(register)
    assert tx.state is S.TRYING
    assert tx.receive_request(register, 0.1) == [RequestRetransmitted(register)]
    assert tx.messages_to_send() == []  # nothing to re-send yet
    ok = respond(register, 200)
    assert tx.send_response(ok, 1.0) == []
    assert tx.state is S.COMPLETED
    assert tx.timer_j == 33.0
    assert tx.receive_request(register, 2.0) == [RequestRetransmitted(register)]
    assert tx.messages_to_send() == [ok, ok]
    assert run_timers(tx, 100.0) == [(33.0, [TransactionTerminated()], [])]


def test_server_non_invite_proceeding_resends_provisional() -> None:
    req = make_request("SUBSCRIBE")
    tx = ServerNonInviteTransaction(req)
    trying = respond(req, 100)
    tx.send_response(trying, 0.0)
    assert tx.state is S.PROCEEDING
    tx.receive_request(req, 0.5)
    assert tx.messages_to_send() == [trying, trying]


def test_server_non_invite_reliable_terminates_at_once() -> None:
    req = make_request("OPTIONS")
    tx = ServerNonInviteTransaction(req, reliable=True)
    assert tx.send_response(respond(req, 200), 0.0) == [TransactionTerminated()]
    assert tx.state is S.TERMINATED
    assert tx.get_timer() is None


# --- transport errors and misuse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "method"),
    [
        (ClientInviteTransaction, "INVITE"),
        (ClientNonInviteTransaction, "OPTIONS"),
        (ServerInviteTransaction, "INVITE"),
        (ServerNonInviteTransaction, "OPTIONS"),
    ],
)
def test_transport_error_terminates(make: type[Transaction], method: str) -> None:
    tx = make(make_request(method))
    assert tx.transport_failed(0.0, "ICMP port unreachable") == [
        TransportError("ICMP port unreachable"),
        TransactionTerminated(),
    ]
    assert tx.state is S.TERMINATED
    assert tx.transport_failed(1.0) == []


def test_misuse_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        ClientInviteTransaction(make_request("OPTIONS"))
    with pytest.raises(LocalProtocolError):
        ClientNonInviteTransaction(make_request("INVITE"))
    with pytest.raises(LocalProtocolError):
        ServerInviteTransaction(make_request("BYE"))
    with pytest.raises(LocalProtocolError):
        ServerNonInviteTransaction(make_request("ACK"))
    tx = ClientNonInviteTransaction(make_request("OPTIONS"))
    tx.send_request(0.0)
    with pytest.raises(LocalProtocolError):
        tx.send_request(0.0)
    with pytest.raises(LocalProtocolError):  # our own requests carry an RFC 3261 branch
        ClientInviteTransaction(make_request(branch="1234"))
    no_via = make_request("OPTIONS")
    no_via.headers.remove("Via")
    with pytest.raises(LocalProtocolError):
        ClientNonInviteTransaction(no_via)


# --- the state tables ---------------------------------------------------------------------------------------


def test_client_invite_table() -> None:
    t = ClientInviteTransaction.TRANSITIONS
    assert t[(S.CALLING, Input.PROVISIONAL)] is S.PROCEEDING
    assert t[(S.CALLING, Input.SUCCESS)] is S.TERMINATED
    assert t[(S.PROCEEDING, Input.SUCCESS)] is S.TERMINATED
    assert t[(S.CALLING, Input.FAILURE)] is S.COMPLETED
    assert t[(S.PROCEEDING, Input.FAILURE)] is S.COMPLETED
    assert t[(S.COMPLETED, Input.FAILURE)] is S.COMPLETED
    assert t[(S.CALLING, Input.TIMER_A)] is S.CALLING
    assert t[(S.CALLING, Input.TIMER_B)] is S.TERMINATED
    assert t[(S.COMPLETED, Input.TIMER_D)] is S.TERMINATED
    assert (S.PROCEEDING, Input.TIMER_B) not in t  # no timeout once a 1xx came (Timer C is the TU's)
    assert (S.COMPLETED, Input.SUCCESS) not in t


def test_client_non_invite_table() -> None:
    t = ClientNonInviteTransaction.TRANSITIONS
    for state in (S.TRYING, S.PROCEEDING):
        assert t[(state, Input.SUCCESS)] is S.COMPLETED
        assert t[(state, Input.FAILURE)] is S.COMPLETED
        assert t[(state, Input.TIMER_F)] is S.TERMINATED
        assert t[(state, Input.TIMER_E)] is state
    assert t[(S.TRYING, Input.PROVISIONAL)] is S.PROCEEDING
    assert t[(S.COMPLETED, Input.TIMER_K)] is S.TERMINATED
    assert (S.COMPLETED, Input.SUCCESS) not in t


def test_server_invite_table() -> None:
    t = ServerInviteTransaction.TRANSITIONS
    assert ServerInviteTransaction.INITIAL_STATE is S.PROCEEDING
    assert t[(S.PROCEEDING, Input.SUCCESS)] is S.TERMINATED
    assert t[(S.PROCEEDING, Input.FAILURE)] is S.COMPLETED
    assert t[(S.COMPLETED, Input.ACK)] is S.CONFIRMED
    assert t[(S.COMPLETED, Input.TIMER_G)] is S.COMPLETED
    assert t[(S.COMPLETED, Input.TIMER_H)] is S.TERMINATED
    assert t[(S.CONFIRMED, Input.TIMER_I)] is S.TERMINATED
    assert (S.COMPLETED, Input.FAILURE) not in t


def test_server_non_invite_table() -> None:
    t = ServerNonInviteTransaction.TRANSITIONS
    assert ServerNonInviteTransaction.INITIAL_STATE is S.TRYING
    assert t[(S.TRYING, Input.PROVISIONAL)] is S.PROCEEDING
    assert t[(S.TRYING, Input.SUCCESS)] is S.COMPLETED
    assert t[(S.PROCEEDING, Input.FAILURE)] is S.COMPLETED
    assert t[(S.COMPLETED, Input.TIMER_J)] is S.TERMINATED
    assert (S.COMPLETED, Input.PROVISIONAL) not in t


# Every (state, input) pair, walked by hypothesis: only LocalProtocolError (TU misuse) may come out,
# TERMINATED is final and has no timers, time never makes a timer fire early.

STEP = st.one_of(
    st.tuples(st.just("response"), st.sampled_from([100, 180, 200, 202, 302, 486, 503, 603])),
    st.tuples(st.just("request"), st.sampled_from(["again", "ACK"])),
    st.tuples(st.just("send"), st.sampled_from([100, 183, 200, 404, 500])),
    st.tuples(st.just("timer"), st.floats(min_value=0.0, max_value=40.0)),
    st.tuples(st.just("transport_error"), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["client_invite", "client_non_invite", "server_invite", "server_non_invite"]),
    st.booleans(),
    st.lists(STEP, max_size=25),
)
def test_random_walks(kind: str, reliable: bool, steps: list[tuple[str, object]]) -> None:
    method = "INVITE" if kind.endswith("_invite") and "non" not in kind else "OPTIONS"
    request = make_request(method)
    tx: Transaction
    if kind == "client_invite":
        tx = ClientInviteTransaction(request, reliable=reliable)
    elif kind == "client_non_invite":
        tx = ClientNonInviteTransaction(request, reliable=reliable)
    elif kind == "server_invite":
        tx = ServerInviteTransaction(request, reliable=reliable)
    else:
        tx = ServerNonInviteTransaction(request, reliable=reliable)
    now = 0.0
    if isinstance(tx, ClientInviteTransaction | ClientNonInviteTransaction):
        tx.send_request(now)
    for action, arg in steps:
        was_terminated = tx.state is S.TERMINATED
        events: list[object] = []
        try:
            if action == "response" and isinstance(tx, ClientInviteTransaction | ClientNonInviteTransaction):
                assert isinstance(arg, int)
                events = list(tx.receive_response(respond(request, arg), now))
            elif action == "request" and isinstance(tx, ServerInviteTransaction | ServerNonInviteTransaction):
                incoming = request if arg == "again" else ack_for(request, respond(request, 486))
                if incoming.method == "ACK" and isinstance(tx, ServerNonInviteTransaction):
                    continue
                events = list(tx.receive_request(incoming, now))
            elif action == "send" and isinstance(tx, ServerInviteTransaction | ServerNonInviteTransaction):
                assert isinstance(arg, int)
                events = list(tx.send_response(respond(request, arg), now))
            elif action == "timer":
                assert isinstance(arg, float)
                deadline = tx.get_timer()
                now += arg
                events = list(tx.handle_timer(now))
                if deadline is None or deadline > now:
                    assert events == [] or not any(isinstance(e, TimedOut) for e in events)
            elif action == "transport_error":
                events = list(tx.transport_failed(now))
        except LocalProtocolError:
            assert was_terminated
            continue
        tx.messages_to_send()
        if was_terminated:
            assert events == []
            assert tx.state is S.TERMINATED
        if TransactionTerminated() in events:
            assert events[-1] == TransactionTerminated()
            assert tx.state is S.TERMINATED
        if tx.state is S.TERMINATED:
            assert tx.get_timer() is None
        if reliable:
            assert tx.timer_a is None
            assert tx.timer_e is None
            assert tx.timer_g is None


# --- matching keys (17.1.3, 17.2.3) -----------------------------------------------------------------


def test_client_key_matches_branch_and_method() -> None:
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    assert client_transaction_key(respond(invite, 180)) == tx.key == ClientTransactionKey("z9hG4bK776asdhds", "INVITE")
    cancel = build_cancel(invite)
    assert cancel.top_via.branch == invite.top_via.branch
    assert client_transaction_key(respond(cancel, 200)) != tx.key  # CANCEL has its own transaction


def test_server_key_ack_matches_invite_cancel_does_not() -> None:
    invite = make_request()
    key = server_transaction_key(invite)
    assert key == ServerTransactionKey("z9hG4bK776asdhds", ("pc33.atlanta.example.com", None), "INVITE")
    ack = ack_for(invite, respond(invite, 486))
    assert server_transaction_key(ack) == key
    cancel = build_cancel(invite)
    assert server_transaction_key(cancel) != key
    assert cancel_target_key(cancel) == key
    other = make_request(branch="z9hG4bKother")
    assert server_transaction_key(other) != key


def test_server_key_sent_by_host_is_case_insensitive_and_port_counts() -> None:
    a = make_request()
    b = make_request()
    b.headers.pop_first("Via")
    b.headers.insert("Via", "SIP/2.0/UDP PC33.Atlanta.Example.COM;branch=z9hG4bK776asdhds")
    assert server_transaction_key(a) == server_transaction_key(b)
    c = make_request()
    c.headers.pop_first("Via")
    c.headers.insert("Via", "SIP/2.0/UDP pc33.atlanta.example.com:5070;branch=z9hG4bK776asdhds")
    assert server_transaction_key(a) != server_transaction_key(c)


def test_legacy_key_without_magic_cookie() -> None:
    invite = make_request(branch="z9hG4bK")
    key = server_transaction_key(invite)
    assert isinstance(key, LegacyServerTransactionKey)
    assert not is_rfc3261_branch("z9hG4bK")
    assert is_rfc3261_branch("z9hG4bKx")
    assert server_transaction_key(ack_for(invite, respond(invite, 486))) == key


def test_new_branch_has_the_cookie() -> None:
    a, b = new_branch(), new_branch()
    assert a != b
    assert is_rfc3261_branch(a)
    assert a.startswith("z9hG4bK")
