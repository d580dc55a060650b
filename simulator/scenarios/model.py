"""What a scenario says: who lives in the town, what traffic reaches them over simulated time, and what
the gateway must achieve.

Every time is in simulated seconds from the start of the run; the runner maps them onto the injected
clock, ``time_speed`` simulated seconds per real second at most. Probabilities are between 0 and 1.
Nothing here does I/O: :mod:`simulator.scenarios.loader` builds these from YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: How a stream spreads its items between its start and end: evenly, following the day (more by day than
#: at night), or in a burst around the middle of its window.
PATTERNS = ("even", "day", "burst")
#: Kinds of legitimate SMS, as the senders a town receives from.
SMS_KINDS = ("bank", "carrier", "courier", "shop", "government", "friend")
#: Ways fraud texts dodge keyword filters; the gateway's normalisation must see through each.
EVASIONS = (
    "spacing",  # 安 全 账 户
    "punctuation",  # 安-全*账户
    "strokes",  # 安丨全丶账户
    "zero_width",  # zero-width spaces and joiners between characters
    "full_width",  # ＡＢＣ１２３
    "traditional",  # 安全帳戶
    "homophone",  # 按全帐护
    "alias",  # 薇信, V信, vx for 微信
    "link_obfuscation",  # h t t p, [.], 点com
)
#: Kinds of number a fraud SMS comes from (as rules' sender.kind tells them apart).
SENDER_KINDS = ("mobile", "virtual_operator", "service_106", "international")
#: How a fraud call hides who calls: not at all, a local mobile number, or a number the person trusts
#: (a bank's or the police's) in the From header.
CALLER_ID_SPOOFS = ("none", "local_mobile", "trusted_number")
#: Families of attempts to make a handset show 反诈名片 without the anti-fraud centre's proof.
SPOOF_KINDS = (
    "display_name",  # the label in the From display name, disguised every way
    "number_in_name",  # 96110 written into the display name or user part
    "headers",  # P-Asserted-Identity, Call-Info, Remote-Party-ID, vendor headers, Subject
    "authorised_number",  # 96110 itself with no Identity, a forged one, an unknown x5u, an untrusted CA
    "token_misuse",  # genuine tokens stale, replayed, for another callee or number, rcd nam mismatch
)
ORIGINS = ("domestic", "international")
RISKS = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Delay:
    """A delay drawn uniformly between ``low`` and ``high`` simulated seconds (equal: a fixed delay)."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class CallHabits:
    #: Probability of answering an ordinary call from a number the person knows or that looks local.
    answer: float
    #: Probability of answering when the handset shows the verified 反诈名片 (people trust it more).
    answer_verified: float
    #: Calls from numbers not in the person's contacts ring out unanswered.
    ignores_unknown: bool
    delay: Delay


@dataclass(frozen=True, slots=True)
class FlashHabits:
    #: Probability of reading and acknowledging a flash warning.
    acknowledge: float
    delay: Delay


@dataclass(frozen=True, slots=True)
class ScriptHabits:
    #: Probability of following a fraud script (transferring money) when nobody warned the person.
    falls_for: float
    #: The same after a warning reached them (a flash read, a dissuasion call answered).
    falls_for_warned: float


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    share: float  # of the population; the shares add up to 1
    calls: CallHabits
    flash: FlashHabits
    script: ScriptHabits


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """Subscriber numbers: ``prefix`` followed by a sequence number zero-padded to ``length`` digits."""

    prefix: str
    length: int
    first: int = 0

    def number(self, index: int) -> str:
        return self.prefix + str(self.first + index).zfill(self.length - len(self.prefix))

    @property
    def capacity(self) -> int:
        return int(10 ** (self.length - len(self.prefix))) - self.first


@dataclass(frozen=True, slots=True)
class Population:
    count: int
    numbers: NumberPlan
    #: Share of subscribers with a 亲情号 (family contact) who also receives the warning.
    family_contacts: float
    profiles: tuple[Profile, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """When a stream's items happen, in simulated seconds from the start of the run."""

    start: float
    end: float
    pattern: str = "even"


@dataclass(frozen=True, slots=True)
class LegitimateSms:
    kind: str
    count: int
    window: Window


@dataclass(frozen=True, slots=True)
class FraudSmsCampaign:
    name: str
    category: str
    count: int
    window: Window
    sender: str = "mobile"
    #: Share of the campaign's texts that use ``evasions`` (each such text uses one, in turn).
    evasion_share: float = 0.0
    evasions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LegitimateCalls:
    count: int
    window: Window
    international_share: float = 0.0


@dataclass(frozen=True, slots=True)
class FraudCallCampaign:
    name: str
    category: str
    count: int
    window: Window
    origin: str = "domestic"
    caller_id: str = "none"


@dataclass(frozen=True, slots=True)
class SpoofAttack:
    """Calls that present the 反诈名片 without the centre's proof; every one must be rejected."""

    kinds: tuple[str, ...]
    #: Attempts of each kind (each kind has several variants; they are tried in turn).
    per_kind: int
    window: Window


@dataclass(frozen=True, slots=True)
class VerifiedCalls:
    """Genuine calls from the anti-fraud centre (96110), signed, that must show the 反诈名片."""

    count: int
    window: Window
    number: str = "96110"


@dataclass(frozen=True, slots=True)
class Instructions:
    """Anti-fraud centre instructions (over MQTT when a broker is configured) to dissuade subscribers."""

    count: int
    window: Window
    #: Share of instructions at each risk; adds up to 1.
    risk: tuple[tuple[str, float], ...]
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Traffic:
    legitimate_sms: tuple[LegitimateSms, ...] = ()
    fraud_sms: tuple[FraudSmsCampaign, ...] = ()
    legitimate_calls: LegitimateCalls | None = None
    fraud_calls: tuple[FraudCallCampaign, ...] = ()
    spoofed_labels: SpoofAttack | None = None
    verified_calls: VerifiedCalls | None = None
    instructions: Instructions | None = None

    @property
    def sms_count(self) -> int:
        return sum(s.count for s in self.legitimate_sms) + sum(c.count for c in self.fraud_sms)

    @property
    def call_count(self) -> int:
        return (
            (self.legitimate_calls.count if self.legitimate_calls else 0)
            + sum(c.count for c in self.fraud_calls)
            + (self.spoofed_labels.per_kind * len(self.spoofed_labels.kinds) if self.spoofed_labels else 0)
            + (self.verified_calls.count if self.verified_calls else 0)
        )

    @property
    def instruction_count(self) -> int:
        return self.instructions.count if self.instructions else 0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    seed: int
    duration: float  # simulated seconds
    time_speed: float  # simulated seconds per real second, at most
    population: Population
    traffic: Traffic
    #: Expectation name -> threshold (see :mod:`simulator.report_expectations` for what each means).
    expectations: dict[str, float | bool] = field(default_factory=dict)
    #: Subscribers whose handset timelines the report shows.
    sample_handsets: int = 4
    source: str = "<string>"

    @property
    def real_seconds(self) -> float:
        """The shortest wall-clock time the run can take: the simulated duration at full speed."""
        return self.duration / self.time_speed
