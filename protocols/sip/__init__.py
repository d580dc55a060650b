"""Sans-IO SIP core (RFC 3261): URIs, headers, messages, parsing, transactions and dialogs.

Bytes in, messages and events out; no sockets, no asyncio, no clock reads (time is passed in as
``now``). Modules:

- :mod:`.uri`: :class:`SipUri` and :func:`parse_uri`.
- :mod:`.headers`: header names and compact forms, comma lists, name-addr, Via, CSeq, parameters.
- :mod:`.message`: :class:`Request`, :class:`Response` and the :class:`Headers` container.
- :mod:`.parser`: :func:`parse_message` (UDP), :class:`StreamParser` (TCP/TLS),
  :func:`validate_request` / :func:`validate_response`.
- :mod:`.transaction`: the four RFC 3261 section 17 transactions and the matching keys.
- :mod:`.dialog`: :class:`Dialog` and :class:`DialogId`.

The modules are plain Python, and strictly typed so that mypyc compiles them when ``make`` sets up
(``make compile``; a fifth to a quarter less CPU per call through the proxy); where it cannot, or after ``make
clean-compiled``, the Python sources run as they are. A build older than its source is not used: the
whole package then runs from its sources, with a warning (:mod:`afgw_compiled`).
"""

from pathlib import Path

from afgw_compiled import use_fresh_build

use_fresh_build(__name__, Path(__file__).parent, "compile")  # first: before any module of the package loads

from protocols.sip.dialog import Dialog, DialogId, DialogState, dialog_id_of
from protocols.sip.headers import (
    LIST_HEADERS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    first_element,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_params,
    parse_via,
    parse_via_list,
    split_list,
)
from protocols.sip.message import Headers, Message, Request, Response, create_response, reason_phrase
from protocols.sip.parser import (
    ParseLimits,
    SipParseError,
    StreamParser,
    is_keepalive,
    parse_message,
    unsupported_extensions,
    validate_request,
    validate_response,
)
from protocols.sip.transaction import (
    MAGIC_COOKIE,
    AckReceived,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransactionKey,
    Input,
    LegacyServerTransactionKey,
    RequestRetransmitted,
    ResponseReceived,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransactionKey,
    TimedOut,
    TimerSettings,
    TransactionEvent,
    TransactionState,
    TransactionTerminated,
    TransportError,
    build_ack,
    build_cancel,
    cancel_target_key,
    client_transaction_key,
    is_rfc3261_branch,
    new_branch,
    server_transaction_key,
)
from protocols.sip.uri import SipUri, hosts_equal, parse_uri, users_equal

__all__ = [
    "LIST_HEADERS",
    "MAGIC_COOKIE",
    "AckReceived",
    "CSeq",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "ClientTransactionKey",
    "Dialog",
    "DialogId",
    "DialogState",
    "Headers",
    "Input",
    "LegacyServerTransactionKey",
    "Message",
    "NameAddr",
    "ParseLimits",
    "Request",
    "RequestRetransmitted",
    "Response",
    "ResponseReceived",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "ServerTransactionKey",
    "SipParseError",
    "SipUri",
    "StreamParser",
    "TimedOut",
    "TimerSettings",
    "TransactionEvent",
    "TransactionState",
    "TransactionTerminated",
    "TransportError",
    "Via",
    "build_ack",
    "build_cancel",
    "cancel_target_key",
    "canonical_name",
    "client_transaction_key",
    "create_response",
    "dialog_id_of",
    "first_element",
    "hosts_equal",
    "is_keepalive",
    "is_rfc3261_branch",
    "new_branch",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_params",
    "parse_uri",
    "parse_via",
    "parse_via_list",
    "reason_phrase",
    "server_transaction_key",
    "split_list",
    "unsupported_extensions",
    "users_equal",
    "validate_request",
    "validate_response",
]
