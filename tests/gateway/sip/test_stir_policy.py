"""The STIR policy without a network: what is stripped, when the verifier is asked, what is decided and
stamped, and the configuration that drives it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from gateway.config import ConfigError, SipStir, load
from gateway.sip.stir_policy import Admit, Refuse, StirPolicy
from protocols.sip import Headers, Request, parse_message, parse_uri
from protocols.stir import VERSTAT_FAILED, VERSTAT_PASSED, Label, Verifier
from tests.e2e.labels_harness import make_labels_pki
from tests.protocols.stir.conftest import CALLEE, NOW, Pki, make_pki

OWN = "8613912345678"
POLICE = "公安反诈专号"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def invite(caller: str = "96110", *, display: str | None = None, extra: tuple[tuple[str, str], ...] = ()) -> Request:
    from_value = f"<sip:{caller}@127.0.0.1>;tag=f1"
    if display is not None:
        from_value = f'"{display}" {from_value}'
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bK1;received=127.0.0.2;rport=5080"),
            ("Max-Forwards", "70"),
            ("From", from_value),
            ("To", f"<sip:{CALLEE}@127.0.0.1>"),
            ("Call-ID", secrets.token_hex(8)),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:{caller}@127.0.0.2:5080>"),
            *extra,
        ]
    )
    return Request("INVITE", parse_uri(f"sip:{CALLEE}@127.0.0.1"), headers)


class CountingVerifier:
    """Wraps a Verifier and counts the calls of ``verify``."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("inner", "calls"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def verify(self, *args: object) -> object:
        self.calls += 1
        return self.inner.verify(*args)  # type: ignore[arg-type]


def policy(pki: Pki, **config: object) -> tuple[StirPolicy, CountingVerifier]:
    verifier = CountingVerifier(pki.verifier())
    return StirPolicy(SipStir(**config), verifier, domain="127.0.0.1"), verifier  # type: ignore[arg-type]


# --- stripping ---------------------------------------------------------------------------------------


def test_everything_a_caller_could_assert_is_stripped_and_routing_is_untouched(pki: Pki) -> None:
    request = invite(
        OWN,
        extra=(
            ("P-Asserted-Identity", f"<sip:{OWN};verstat=TN-Validation-Passed@127.0.0.1;user=phone>"),
            ("P-Preferred-Identity", "<sip:12345@127.0.0.1>"),
            ("Call-Info", "<https://x.example/logo.png>;purpose=icon"),
            ("y", "eyJ.eyJ.sig;info=<https://x.example/c.pem>"),
            ("x-caller-label", "Bank"),
            ("Remote-Party-ID", "<sip:1@127.0.0.1>;screen=yes"),
            ("History-Info", "<sip:x@127.0.0.1;verstat=TN-Validation-Passed>;index=1"),
            ("Subject", "hello"),
        ),
    )
    request.headers.set("From", f'"Bank" <sip:{OWN};verstat=TN-Validation-Passed@127.0.0.1;user=phone>;tag=f1')
    request.headers.set("To", f"<sip:{CALLEE}@127.0.0.1;VerStat=No-TN-Validation>")
    request.headers.set("Contact", "<sip:x@127.0.0.2:5080;verstat=TN-Validation-Passed>;verstat=x, <sip:y@127.0.0.2>")
    request.headers.set("Call-ID", "verstat-is-just-a-word-here")
    stripped = StirPolicy(SipStir(), None, domain="127.0.0.1").strip(request)
    assert stripped.identities == ["eyJ.eyJ.sig;info=<https://x.example/c.pem>"]
    assert list(request.headers) == [
        ("Via", "SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bK1;received=127.0.0.2;rport=5080"),
        ("Max-Forwards", "70"),
        ("From", f'"Bank" <sip:{OWN}@127.0.0.1;user=phone>;tag=f1'),
        ("To", f"<sip:{CALLEE}@127.0.0.1>"),
        ("Call-ID", "verstat-is-just-a-word-here"),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:x@127.0.0.2:5080>, <sip:y@127.0.0.2>"),
        ("Subject", "hello"),
    ]


@pytest.mark.parametrize(
    "from_value",
    [
        "<sip:96110%3Bverstat%3DTN-Validation-Passed@127.0.0.1;user=phone>;tag=f1",
        "<sip:96110;%76erstat=TN-Validation-Passed@127.0.0.1>;tag=f1",
        "<tel:+8696110;verstat=TN-Validation-Passed>;tag=f1",
        "<sip:96110@127.0.0.1>;verstat=TN-Validation-Passed;tag=f1",
    ],
)
def test_verstat_is_removed_from_from_in_every_spelling(from_value: str) -> None:
    request = invite()
    request.headers.set("From", from_value)
    StirPolicy(SipStir(), None, domain="127.0.0.1").strip(request)
    wire = request.serialise().decode()
    assert "verstat" not in wire.lower()
    parsed = parse_message(request.serialise())
    assert isinstance(parsed, Request)
    assert parsed.from_tag == "f1"


def test_in_dialog_requests_lose_the_header_fields_only() -> None:
    request = invite(extra=(("P-Asserted-Identity", '"x" <sip:1@h>'), ("Identity", "a.b.c;info=<https://h/c>")))
    StirPolicy(SipStir(strip_headers=("X-Foo",)), None, domain="h").strip_in_dialog(request)
    assert "P-Asserted-Identity" not in request.headers
    assert "Identity" not in request.headers


@pytest.mark.parametrize("name", ["To", "From", "Contact"])
def test_in_dialog_requests_keep_the_dialog_addresses_that_show_a_label(pki: Pki, name: str) -> None:
    """The handset's BYE or key press names the labelled caller in To: without To it is no request."""
    stir, _ = policy(pki)
    request = invite()
    request.headers.set(name, f'"{POLICE}" <sip:96110@127.0.0.1>;tag=t1')
    request.headers.add("X-Caller-Name", POLICE)
    stir.strip_in_dialog(request)
    assert request.headers.get(name) == f'"{POLICE}" <sip:96110@127.0.0.1>;tag=t1'
    assert "X-Caller-Name" not in request.headers


def test_without_labels_identity_is_removed_and_nothing_is_verified() -> None:
    request = invite(display=POLICE, extra=(("Identity", "a.b.c;info=<https://h/c>"),))
    assert StirPolicy(SipStir(), None, domain="h").screen(request, CALLEE, NOW) == Admit()
    assert "Identity" not in request.headers


# --- when the verifier is asked ------------------------------------------------------------------------


def test_an_ordinary_call_is_never_verified(pki: Pki) -> None:
    stir, verifier = policy(pki)
    request = invite(OWN, display="Shanghai Bank", extra=(("X-Caller-Name", "Shanghai Bank"),))
    assert stir.screen(request, CALLEE, NOW) == Admit()
    assert verifier.calls == 0
    assert '"Shanghai Bank"' in (request.headers.get("From") or "")


@pytest.mark.parametrize(
    "request_",
    [
        invite("96110"),
        invite(OWN, display="公安反詐專號"),
        invite(OWN, extra=(("X-Caller-Label", "【公安反诈专号】"),)),
        invite(OWN, extra=(("Identity", "a.b.c;info=<https://h/c>"),)),
    ],
)
def test_the_verifier_is_asked_for_an_identity_an_authorised_number_or_a_label(pki: Pki, request_: Request) -> None:
    stir, verifier = policy(pki)
    stir.screen(request_, CALLEE, NOW)
    assert verifier.calls == 1


# --- decisions and stamps ------------------------------------------------------------------------------


def test_a_verified_label_is_stamped_as_pai_with_verstat_and_call_info(pki: Pki) -> None:
    stir, _ = policy(pki)
    request = invite("+8696110", extra=(("Identity", pki.sign("96110")),))
    admit = stir.screen(request, CALLEE, NOW)
    assert admit == Admit(VERSTAT_PASSED, "8696110", POLICE, "反诈预警劝阻", attest="A")
    assert isinstance(admit, Admit)
    stir.stamp(request, admit)
    assert request.headers.get("P-Asserted-Identity") == (
        '"公安反诈专号" <sip:+8696110;verstat=TN-Validation-Passed@127.0.0.1;user=phone>'
    )
    (card,) = request.headers.get_all("Call-Info")
    assert card.startswith("<data:application/vcard+json;base64,")
    assert card.endswith('>;purpose=jcard;call-reason="反诈预警劝阻"')
    assert "Identity" not in request.headers


def test_the_label_shown_by_the_caller_may_only_be_the_verified_one(pki: Pki) -> None:
    stir, _ = policy(pki)
    same = invite("96110", display=POLICE, extra=(("Identity", pki.sign("96110")), ("X-Caller-Label", POLICE)))
    assert isinstance(stir.screen(same, CALLEE, NOW), Admit)
    other = invite("96110", extra=(("Identity", pki.sign("96110", iat=NOW - 1)), ("X-Caller-Label", "工信部反诈预警")))
    refused = stir.screen(other, CALLEE, NOW)
    assert isinstance(refused, Refuse)
    assert (refused.status, refused.reason, refused.claims) == (
        438,
        'STIR;cause=438;text="Invalid Identity Header"',
        {"工信部反诈预警"},
    )


def test_an_ordinary_number_with_a_failing_identity_rings_marked_failed(pki: Pki) -> None:
    stir, _ = policy(pki)
    stale = pki.sign(OWN, iat=NOW - 3600, label=None)
    admit = stir.screen(invite(OWN, extra=(("Identity", stale),)), CALLEE, NOW)
    assert admit == Admit(VERSTAT_FAILED, OWN)
    # ... unless it also shows a label somewhere: then that identity's failure is the answer.
    labelled = invite(OWN, extra=(("Identity", stale), ("Call-Info", f'<https://h/x>;call-reason="{POLICE}"')))
    refused = stir.screen(labelled, CALLEE, NOW)
    assert isinstance(refused, Refuse)
    assert (refused.status, refused.reason) == (403, 'STIR;cause=403;text="Stale Date"')


def test_an_unproven_authorised_call_is_refused_or_delivered_by_policy(pki: Pki) -> None:
    reject, _ = policy(pki)
    deliver, _ = policy(pki, unverified_authorised="deliver")
    refused = reject.screen(invite("96110"), CALLEE, NOW)
    assert isinstance(refused, Refuse)
    assert (refused.status, refused.reason_phrase) == (428, "Use Identity Header")
    assert deliver.screen(invite("96110"), CALLEE, NOW) == Admit(VERSTAT_FAILED, "8696110")
    forged = invite("96110", extra=(("Identity", pki.sign("96110", iat=NOW - 3600)),))
    assert deliver.screen(forged, CALLEE, NOW) == Admit(VERSTAT_FAILED, "8696110")
    shown = deliver.screen(invite("96110", display="公安反詐專號"), CALLEE, NOW)
    assert isinstance(shown, Refuse)
    assert shown.status == 428


def test_a_verified_ordinary_number_is_asserted_without_a_name(pki: Pki) -> None:
    from protocols.stir import TnAuthList

    url = "https://carrier.example/c.pem"
    key = pki.issue(url, tn_auth=TnAuthList.for_numbers(["8613912345678"]), constraints=None)
    stir, _ = policy(pki)
    identity = pki.sign(OWN, label=None, key=key, x5u=url)
    request = invite(OWN, display="Shanghai Bank", extra=(("Identity", identity),))
    admit = stir.screen(request, CALLEE, NOW)
    assert admit == Admit(VERSTAT_PASSED, OWN, attest="A")
    assert isinstance(admit, Admit)
    # attestation B is verified too, and says so: the rules tell A from B
    signed_b = pki.sign(OWN, label=None, key=key, x5u=url, attest="B", iat=NOW - 1)
    assert stir.screen(invite(OWN, extra=(("Identity", signed_b),)), CALLEE, NOW) == Admit(
        VERSTAT_PASSED, OWN, attest="B"
    )
    stir.stamp(request, admit)
    assert (
        request.headers.get("P-Asserted-Identity") == f"<sip:+{OWN};verstat=TN-Validation-Passed@127.0.0.1;user=phone>"
    )
    assert "Call-Info" not in request.headers
    # and an rcd nam with a disguised label is refused, even from a certificate that allows it
    disguised = pki.sign(OWN, label=Label("公安反詐專號"), key=key, x5u=url)
    refused = stir.screen(invite(OWN, extra=(("Identity", disguised),)), CALLEE, NOW)
    assert isinstance(refused, Refuse)
    assert refused.status == 438


# --- configuration -------------------------------------------------------------------------------------


def _config(tmp_path: Path, sip: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"sip:\n  trusted_peers: ['127.0.0.2']\n{sip}", encoding="utf-8")
    return path


def test_labels_and_stir_in_the_sip_section(tmp_path: Path) -> None:
    pki = make_labels_pki(tmp_path)
    path = _config(
        tmp_path,
        "  labels: labels.yaml\n  stir:\n    unverified_authorised: deliver\n    strip_headers: [X-Brand]\n",
    )
    sip = load(path).sip
    assert sip is not None
    assert sip.labels is not None
    assert sip.labels.source == str(pki.labels_path)
    assert sip.stir == SipStir(unverified_authorised="deliver", strip_headers=("X-Brand",))


def test_stir_mistakes_are_reported_with_their_location(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        "  labels: nowhere.yaml\n  stir:\n    unverified_authorised: maybe\n    strip_headers: ['X: y']\n",
    )
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.errors == [
        f"{path}:3:11: labels: {tmp_path / 'nowhere.yaml'} is not a file (hint: e.g. labels: labels.yaml)",
        f"{path}:5:28: unverified_authorised: 'maybe' is not one of deliver, reject",
        f"{path}:6:21: strip_headers: 'X: y' is not a header name",
    ]


def test_a_labels_file_whose_keys_are_missing_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    shipped = (Path(__file__).resolve().parents[3] / "config" / "labels.yaml").read_text(encoding="utf-8")
    labels.write_text(shipped, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(_config(tmp_path, "  labels: labels.yaml\n"))
    (error,) = [e for e in caught.value.errors if "trust anchor" in e]
    assert error.startswith(f"{labels}:")
    assert "cannot read trust anchor" in error


# --- protected numbers in display names ------------------------------------------------------------


@pytest.mark.parametrize(
    "display", ["96110", "九六一一零", "玖陆壹壹零", "９６１１０", "9611O", "0086 96110", "(010) 96110"]
)
@pytest.mark.parametrize("where", ["from", "pai"])
def test_a_display_name_reading_as_a_protected_number_is_428(pki: Pki, display: str, where: str) -> None:
    stir, verifier = policy(pki)
    if where == "from":
        request = invite(OWN, display=display)
    else:
        request = invite(OWN, extra=(("P-Asserted-Identity", f'"{display}" <sip:{OWN}@127.0.0.1>'),))
    verdict = stir.screen(request, CALLEE, NOW)
    assert isinstance(verdict, Refuse)
    assert (verdict.status, verdict.reason) == (428, 'STIR;cause=428;text="Use Identity Header"')
    assert verifier.calls == 0


@pytest.mark.parametrize("display", ["张三", "Alice 2", "老王烧烤 8号店", "Shop 13812345678", "Room 101", "110"])
def test_ordinary_display_names_with_digits_pass(pki: Pki, display: str) -> None:
    stir, verifier = policy(pki)
    assert stir.screen(invite(OWN, display=display), CALLEE, NOW) == Admit()
    assert verifier.calls == 0


# --- every header, every name ------------------------------------------------------------------------

_JCARD = "eyJmbiI6IuWFrOWuieWPjeiviOS4k+WPtyJ9"  # base64 of {"fn":"公安反诈专号"}


@pytest.mark.parametrize(
    "name", ["P-Caller-Label", "X-Label", "X-Acme-CNAM", "Alert-Info", "User-Agent", "Warning", "Priority"]
)
@pytest.mark.parametrize(
    "value",
    [
        POLICE,
        "【公安反詐專號】",
        "%E5%85%AC%E5%AE%89%E5%8F%8D%E8%AF%88%E4%B8%93%E5%8F%B7",
        f"<data:application/json;base64,{_JCARD}>",
        "工信部 反诈 预警",
    ],
)
def test_a_label_in_any_header_is_refused(pki: Pki, name: str, value: str) -> None:
    stir, _ = policy(pki)
    verdict = stir.screen(invite(OWN, extra=((name, value),)), CALLEE, NOW)
    assert isinstance(verdict, Refuse)
    assert (verdict.status, verdict.reason) == (428, 'STIR;cause=428;text="Use Identity Header"')


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Note", "张三的电话"), ("User-Agent", "微信 8.0"), ("Subject", "明天开会"), ("X-Shop", "反诈宣传周")],
)
def test_ordinary_chinese_headers_pass(pki: Pki, name: str, value: str) -> None:
    stir, verifier = policy(pki)
    request = invite(OWN, extra=((name, value),))
    assert stir.screen(request, CALLEE, NOW) == Admit()
    assert request.headers.get(name) == value
    assert verifier.calls == 0


@pytest.mark.parametrize(
    "body", [f"您好，这里是{POLICE}".encode(), "公安 反詐 專號 提醒您".encode(), "工信部反诈预警".encode()]
)
def test_a_label_in_a_message_body_is_refused(pki: Pki, body: bytes) -> None:
    stir, _ = policy(pki)
    request = invite(OWN)
    message = Request("MESSAGE", request.uri, request.headers, body)
    verdict = stir.screen(message, CALLEE, NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.status == 428


def test_an_ordinary_message_body_passes(pki: Pki) -> None:
    stir, _ = policy(pki)
    request = invite(OWN)
    message = Request("MESSAGE", request.uri, request.headers, "晚上一起吃饭吗？96号桌".encode())
    assert stir.screen(message, CALLEE, NOW) == Admit()


# --- the label in From, for phones that read only From ---------------------------------------------


@pytest.mark.parametrize("display", [None, "96110", "Anti-Fraud Centre", POLICE])
@pytest.mark.parametrize("caller", ["96110", "+8696110", "010-96110"])
def test_a_verified_label_is_also_the_from_display_name(pki: Pki, display: str | None, caller: str) -> None:
    stir, _ = policy(pki)
    request = invite(caller, display=display, extra=(("Identity", pki.sign(caller, iat=NOW)),))
    before = request.from_addr
    admit = stir.screen(request, CALLEE, NOW)
    assert isinstance(admit, Admit)
    assert admit.label == POLICE
    stir.stamp(request, admit)
    after = request.from_addr
    assert after.display == POLICE
    assert (after.uri, after.tag) == (before.uri, before.tag)


def test_the_from_display_name_is_left_alone_when_so_configured_or_unlabelled(pki: Pki) -> None:
    off, _ = policy(pki, label_in_from=False)
    request = invite("96110", display="Centre", extra=(("Identity", pki.sign("96110")),))
    admit = off.screen(request, CALLEE, NOW)
    assert isinstance(admit, Admit)
    off.stamp(request, admit)
    assert request.from_addr.display == "Centre"
    on, _ = policy(pki)
    ordinary = Admit(VERSTAT_PASSED, OWN)
    request = invite(OWN, display="Zhang San")
    on.stamp(request, ordinary)
    assert request.from_addr.display == "Zhang San"


def test_label_in_from_is_read_from_the_stir_section(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("sip:\n  stir:\n    label_in_from: false\n")
    assert load(path).sip.stir.label_in_from is False
    path.write_text("sip:\n  stir: {}\n")
    assert load(path).sip.stir.label_in_from is True
