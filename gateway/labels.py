"""``config/labels.yaml``: the verified caller labels (反诈名片), their trust anchors and certificate store.

Loading is split in two so that each part can fail on its own terms:

- ``load_labels(path)`` reads and checks the file: every number normalises, every number has one
  label text, fields have the right types. Problems are ``file:line:col: message`` (LabelsError),
  all reported in one pass.
- ``open_trust(config)`` reads the files the configuration names (trust anchor certificates, the
  certificate store directory); a missing or unreadable one is reported at the line that names it.

``build_verifier`` then assembles a ``protocols.stir.Verifier``; ``load_signer`` gives the anti-fraud
centre's signer (for the simulator). Relative paths are relative to the labels file's directory.

The certificate store maps each x5u (and icn, jcl) URL to a local file: by an explicit table
(``cert_store.files``, URL -> path), else by the URL's last path segment in ``cert_store.directory``
(``protocols.stir.store_file_name``: ``https://cr.example/certs/sp-1234.pem`` is ``sp-1234.pem``).
It is read once, at load: verifying a call never touches the disk or the network.

``delegations`` let a service provider code sign for label numbers: a certificate (under one of the
trust anchors) whose TNAuthList carries SPC X may sign the labels of the numbers listed for X. A
certificate that lists a number itself needs no delegation; an SPC certificate without one verifies
ordinary calls and never earns a label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocols.stir import (
    CHINA,
    CredentialResolver,
    Label,
    LabelRegistry,
    NumberPlan,
    ReplayCache,
    Signer,
    StirError,
    Verifier,
    load_certificates,
    normalise_tn,
    store_file_name,
)
from rules.yaml_source import LocatedDict, Location, Reader, SourceErrors, load_file

__all__ = [
    "DirectoryStore",
    "LabelsConfig",
    "LabelsError",
    "build_registry",
    "build_verifier",
    "load_labels",
    "load_signer",
    "open_trust",
]

MAX_LABEL_LENGTH = 64
MAX_STORE_FILE = 64 * 1024


class LabelsError(Exception):
    """The labels configuration cannot be used; ``errors`` lists each problem as ``file:line:col: message``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class LocatedPath:
    path: Path
    location: Location


@dataclass(frozen=True, slots=True)
class LabelsConfig:
    source: str
    labels: Mapping[str, Label]  # normalised number -> label
    plan: NumberPlan
    trust_anchors: tuple[LocatedPath, ...]
    cert_store: LocatedPath | None
    freshness: float = 60.0
    max_identity_headers: int = 4
    replay_cache_entries: int = 100_000
    signing_x5u: str | None = None
    signing_key: LocatedPath | None = field(default=None, repr=False)
    #: URL -> file, taking precedence over the directory (for URLs whose last segments collide).
    cert_files: tuple[tuple[str, LocatedPath], ...] = ()
    #: SPC -> the label numbers (E.164) it may sign for.
    delegations: Mapping[str, frozenset[str]] = field(default_factory=dict)


class DirectoryStore:
    """URL -> content: an explicit table of files first, else a directory (files named by
    ``store_file_name``, the URL's last path segment), all read once.

    A ``protocols.stir.UrlStore``. Directory files above MAX_STORE_FILE are skipped: no certificate
    chain or icon we would accept is that large, and the whole store is held in memory.
    """

    def __init__(self, directory: Path | None, files: Mapping[str, bytes] | None = None) -> None:
        self.directory = directory
        self._urls: dict[str, bytes] = dict(files or {})
        self._files: dict[str, bytes] = {}
        if directory is not None:
            for path in sorted(directory.iterdir()):
                if path.is_file() and path.stat().st_size <= MAX_STORE_FILE:
                    self._files[path.name] = path.read_bytes()

    def get(self, url: str, /) -> bytes | None:
        content = self._urls.get(url)
        if content is not None:
            return content
        name = store_file_name(url)
        return self._files.get(name) if name is not None else None

    def __len__(self) -> int:
        return len(self._files) + len(self._urls)


def load_labels(path: str | Path) -> LabelsConfig:
    """Read and check a labels.yaml; raises LabelsError listing every problem found."""
    reader = Reader()
    try:
        doc = load_file(path, collect=reader.errors)
    except SourceErrors as exc:
        raise LabelsError([str(e) for e in exc.errors]) from None
    if not isinstance(doc, LocatedDict):
        raise LabelsError([f"{path}:1:1: the labels file must be a mapping of sections"])
    base = Path(path).resolve().parent
    reader.keys(
        doc,
        {
            "labels",
            "trust_anchors",
            "cert_store",
            "freshness",
            "max_identity_headers",
            "replay_cache_entries",
            "number_plan",
            "signing",
            "delegations",
        },
        required=("labels", "trust_anchors", "cert_store"),
    )
    plan = _plan(reader, reader.mapping(doc, "number_plan"))
    labels = _labels(reader, doc, plan)
    delegations = _delegations(reader, doc, plan, labels)
    anchors = []
    for item, where in reader.items(doc, "trust_anchors"):
        if isinstance(item, str) and item:
            anchors.append(LocatedPath(base / item, where))
        else:
            reader.error(where, "each trust anchor is the path of a PEM certificate file")
    if "trust_anchors" in doc and not anchors:
        reader.error(doc.where("trust_anchors"), "trust_anchors: at least one CA certificate is needed")
    store, files = _cert_store(reader, doc, base)
    freshness = _positive(reader, doc, "freshness", float, 60.0)
    max_headers = _positive(reader, doc, "max_identity_headers", int, 4)
    replay_entries = _positive(reader, doc, "replay_cache_entries", int, 100_000)
    x5u, key = None, None
    if (signing := reader.mapping(doc, "signing")) is not None:
        reader.keys(signing, {"x5u", "key"})
        x5u = reader.get(signing, "x5u", str, None)
        if x5u is not None and not x5u.startswith(("https://", "http://")):
            reader.error(signing.where("x5u"), f"x5u: expected an http(s) URL, got {x5u!r}")
        key_path = reader.get(signing, "key", str, None)
        key = LocatedPath(base / key_path, signing.where("key")) if key_path else None
    try:
        reader.check()
    except SourceErrors as exc:
        raise LabelsError([str(e) for e in exc.errors]) from None
    return LabelsConfig(
        source=str(path),
        labels=labels,
        plan=plan,
        trust_anchors=tuple(anchors),
        cert_store=store,
        cert_files=files,
        delegations=delegations,
        freshness=freshness,
        max_identity_headers=max_headers,
        replay_cache_entries=replay_entries,
        signing_x5u=x5u,
        signing_key=key,
    )


def _cert_store(
    reader: Reader, doc: LocatedDict, base: Path
) -> tuple[LocatedPath | None, tuple[tuple[str, LocatedPath], ...]]:
    """``cert_store``: a directory path, or a mapping with ``directory`` and/or ``files`` (URL -> path)."""
    if "cert_store" not in doc or doc["cert_store"] is None:
        return None, ()
    if isinstance(doc["cert_store"], str):
        directory = doc["cert_store"]
        return (LocatedPath(base / directory, doc.where("cert_store")) if directory else None), ()
    section = reader.mapping(doc, "cert_store")
    if section is None:
        return None, ()
    reader.keys(section, {"directory", "files"})
    directory = reader.get(section, "directory", str, None)
    located = LocatedPath(base / directory, section.where("directory")) if directory else None
    files: list[tuple[str, LocatedPath]] = []
    table = reader.mapping(section, "files")
    if table is not None:
        for url in table:
            where = table.where_key(url)
            path = table[url]
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                reader.error(where, f"files: {url!r} is not an http(s) URL")
            elif not isinstance(path, str) or not path:
                reader.error(table.where(url), f"files: the file for {url} must be a path")
            else:
                files.append((url, LocatedPath(base / path, table.where(url))))
    if located is None and not files:
        reader.error(doc.where("cert_store"), "cert_store: give a directory, files, or both")
    return located, tuple(files)


def _delegations(
    reader: Reader, doc: LocatedDict, plan: NumberPlan, labels: Mapping[str, Label]
) -> dict[str, frozenset[str]]:
    """``delegations: [{spc: "1234", numbers: ["96110", ...]}]``: label numbers an SPC may sign for."""
    result: dict[str, frozenset[str]] = {}
    for item, where in reader.items(doc, "delegations"):
        if not isinstance(item, LocatedDict):
            reader.error(where, "each delegation is a mapping with spc and numbers")
            continue
        reader.keys(item, {"spc", "numbers"}, required=("spc", "numbers"))
        spc = item.get("spc")
        if "spc" in item and (not isinstance(spc, str) or not spc.isascii() or not spc.isalnum()):
            reader.error(
                item.where("spc"), f"spc: expected a quoted service provider code (letters, digits), got {spc!r}"
            )
            spc = None
        elif isinstance(spc, str) and spc in result:
            reader.error(item.where("spc"), f"spc: {spc!r} is delegated twice; list all its numbers once")
            spc = None
        numbers: set[str] = set()
        listed = reader.items(item, "numbers")
        if "numbers" in item and not listed:
            reader.error(item.where("numbers"), "numbers: list at least one label number")
        for number, number_at in listed:
            if not isinstance(number, str):
                reader.error(number_at, f"numbers: expected a quoted string, got {number!r}")
                continue
            try:
                tn = normalise_tn(number, plan)
            except StirError:
                reader.error(number_at, f"numbers: {number!r} is not a telephone number")
                continue
            if tn not in labels:
                reader.error(number_at, f"numbers: {number!r} (normalised {tn}) is not one of the label numbers")
                continue
            numbers.add(tn)
        if isinstance(spc, str) and numbers:
            result[spc] = frozenset(numbers)
    return result


def _positive(reader: Reader, d: LocatedDict, key: str, kind: type, default: Any) -> Any:
    value = reader.get(d, key, kind, default)
    if value is not None and value <= 0:
        reader.error(d.where(key), f"{key}: must be greater than zero, got {value}")
        return default
    return value


def _plan(reader: Reader, d: LocatedDict | None) -> NumberPlan:
    if d is None:
        return CHINA
    reader.keys(d, {"country_code", "trunk_prefix", "international_prefix", "short_codes"})
    values = {}
    for key in ("country_code", "trunk_prefix", "international_prefix"):
        value = reader.get(d, key, str, getattr(CHINA, key))
        if not value.isdigit():
            reader.error(d.where(key), f"{key}: expected digits, got {value!r}")
            value = getattr(CHINA, key)
        values[key] = value
    codes = set(CHINA.short_codes)
    for item, where in reader.items(d, "short_codes"):
        if isinstance(item, str) and item.isdigit():
            codes.add(item)
        else:
            reader.error(where, f"short_codes: expected a quoted string of digits, got {item!r}")
    return NumberPlan(
        country_code=values["country_code"],
        trunk_prefix=values["trunk_prefix"],
        international_prefix=values["international_prefix"],
        short_codes=frozenset(codes),
    )


def _labels(reader: Reader, doc: LocatedDict, plan: NumberPlan) -> dict[str, Label]:
    result: dict[str, Label] = {}
    first_seen: dict[str, Location] = {}
    for item, where in reader.items(doc, "labels"):
        if not isinstance(item, LocatedDict):
            reader.error(where, "each label must be a mapping with text and numbers")
            continue
        reader.keys(item, {"text", "crn", "icon", "numbers"}, required=("text", "numbers"))
        text = reader.get(item, "text", str, None)
        if text is not None:
            text = text.strip()
            if not text or len(text) > MAX_LABEL_LENGTH or any(ord(c) < 0x20 for c in text):
                reader.error(item.where("text"), f"text: a label is 1 to {MAX_LABEL_LENGTH} printable characters")
                text = None
        crn = reader.get(item, "crn", str, None)
        icon = reader.get(item, "icon", str, None)
        numbers = reader.items(item, "numbers")
        if "numbers" in item and not numbers:
            reader.error(item.where("numbers"), "numbers: list at least one number")
        for number, number_at in numbers:
            if not isinstance(number, str):
                reader.error(
                    number_at,
                    f"numbers: expected a quoted string, got {number!r}",
                    "quote numbers so that leading zeros and '+' survive",
                )
                continue
            try:
                tn = normalise_tn(number, plan)
            except StirError:
                reader.error(number_at, f"numbers: {number!r} is not a telephone number")
                continue
            if text is None:
                continue
            label = Label(text=text, crn=crn, icon=icon)
            if tn in result and result[tn] != label:
                first = first_seen[tn]
                reader.error(
                    number_at,
                    f"numbers: {number!r} (normalised {tn}) already has the label {result[tn].text!r}",
                    f"first given at line {first.line}",
                )
                continue
            result.setdefault(tn, label)
            first_seen.setdefault(tn, number_at)
    return result


def build_registry(config: LabelsConfig) -> LabelRegistry:
    return LabelRegistry(config.labels, config.plan)


def open_trust(config: LabelsConfig) -> tuple[list[x509.Certificate], DirectoryStore]:
    """Read the trust anchors and the certificate store; raises LabelsError naming the line at fault."""
    errors: list[str] = []
    anchors: list[x509.Certificate] = []
    for anchor in config.trust_anchors:
        try:
            anchors.extend(load_certificates(anchor.path.read_bytes()))
        except OSError as exc:
            errors.append(f"{anchor.location}: cannot read trust anchor {anchor.path}: {exc.strerror}")
        except ValueError:
            errors.append(f"{anchor.location}: {anchor.path} is not a PEM certificate")
    files: dict[str, bytes] = {}
    for url, file in config.cert_files:
        try:
            files[url] = file.path.read_bytes()
        except OSError as exc:
            errors.append(f"{file.location}: cannot read {file.path} for {url}: {exc.strerror}")
    store = None
    if config.cert_store is not None or config.cert_files:
        try:
            store = DirectoryStore(config.cert_store.path if config.cert_store else None, files)
        except OSError as exc:
            assert config.cert_store is not None
            where, path = config.cert_store.location, config.cert_store.path
            errors.append(f"{where}: cannot read certificate store {path}: {exc.strerror}")
    if errors or store is None:
        raise LabelsError(errors or [f"{config.source}:1:1: cert_store is required"])
    return anchors, store


def build_verifier(config: LabelsConfig) -> Verifier:
    anchors, store = open_trust(config)
    return Verifier(
        credentials=CredentialResolver(anchors, store),
        registry=build_registry(config),
        replay=ReplayCache(max_entries=config.replay_cache_entries),
        freshness=config.freshness,
        max_identity_headers=config.max_identity_headers,
        # The same directory holds rcd icons and jCards, so rcdi digests are checked against it too.
        resources=store,
        delegations=config.delegations,
    )


def load_signer(config: LabelsConfig) -> Signer:
    """The anti-fraud centre's signer, from ``signing.key`` and ``signing.x5u``."""
    if config.signing_key is None or config.signing_x5u is None:
        raise LabelsError([f"{config.source}:1:1: signing.key and signing.x5u are needed to sign"])
    try:
        key = serialization.load_pem_private_key(config.signing_key.path.read_bytes(), password=None)
    except OSError as exc:
        where, path = config.signing_key.location, config.signing_key.path
        raise LabelsError([f"{where}: cannot read {path}: {exc.strerror}"]) from None
    except ValueError:
        raise LabelsError(
            [f"{config.signing_key.location}: {config.signing_key.path} is not a PEM private key"]
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LabelsError([f"{config.signing_key.location}: the signing key must be an EC P-256 key"])
    return Signer(key, config.signing_x5u, plan=config.plan)
