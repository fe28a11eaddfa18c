"""What to scan: BMC targets from ``--target`` values or from the inventory's ``bmcs`` section.

A ``--target`` is ``[NAME=]URL`` where URL is ``https://HOST[:PORT]`` (Redfish; ``http://`` is
accepted and reported as plain-HTTP Redfish), a bare host (= ``https://HOST``), or
``ipmi://HOST[:PORT]`` (the IPMI-over-LAN probe, UDP 623 by default). Values with the same NAME
are one BMC; an unnamed ``ipmi://`` target joins the one Redfish target on the same host when
there is exactly one. Unnamed targets are named after the host (``10.0.0.5``, ``127.0.0.1-8443``
when the port is not the scheme's default), so the evidence subject is ``bmc/<name>``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from gpufence.errors import InputError, SourceLocation, redact_secrets
from gpufence.model.inventory import Inventory

__all__ = [
    "IPMI_PORT",
    "BmcTarget",
    "parse_targets",
    "read_targets_file",
    "redacted",
    "targets_from_inventory",
]

IPMI_PORT = 623
_DEFAULT_PORTS = {"https": 443, "http": 80, "ipmi": IPMI_PORT}
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class BmcTarget:
    """One BMC to scan: its Redfish endpoint and/or its IPMI endpoint."""

    name: str
    host: str
    redfish_url: str | None = None
    """Scheme, host and port only, e.g. ``https://10.0.0.5:443``."""
    ipmi_port: int | None = None
    """UDP port of the IPMI probe; None = no IPMI probe."""
    ipmi_explicit: bool = False
    """The IPMI endpoint was asked for (``ipmi://``), not just the default probe."""
    inventory_name: str | None = None

    @property
    def port(self) -> int | None:
        """The Redfish URL's port, None without Redfish."""
        return urlsplit(self.redfish_url).port if self.redfish_url else None

    @property
    def scheme(self) -> str | None:
        """The Redfish URL's scheme, None without Redfish."""
        return urlsplit(self.redfish_url).scheme if self.redfish_url else None


@dataclass(frozen=True)
class _Parsed:
    name: str | None
    scheme: str
    host: str
    port: int
    raw: str


def _derived_name(host: str, scheme: str, port: int) -> str:
    base = host.replace(":", "-").strip("-")  # IPv6 literals: ':' is not allowed in names
    name = base if port == _DEFAULT_PORTS[scheme] else f"{base}-{port}"
    return name[:64].strip("-.") or "bmc"


_COMMENT = re.compile(r"(?:^|\s)#")


def redacted(value: str) -> str:
    """``value`` with the password of any URL replaced by ``***`` (``errors.redact_secrets``)."""
    return redact_secrets(value)


def _parse_one(raw: str) -> _Parsed:
    # Every message names the target redacted: a password pasted into a URL is never echoed.
    value = redacted(raw)
    name: str | None = None
    text = raw.strip()
    text = value.strip()
    scheme_at = text.find("://")
    equals_at = text.find("=")
    if equals_at > 0 and (scheme_at < 0 or equals_at < scheme_at):
        name, text = text[:equals_at], text[equals_at + 1 :]
        if not _NAME.match(name):
            raise InputError(
                f"--target {value!r}: BMC name {name!r} must be 1-64 letters, digits, '.', '_', '-'"
            )
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"--target {value!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InputError(
            f"--target {value!r}: unsupported scheme {scheme!r}",
            hint="use https://HOST[:PORT] for Redfish or ipmi://HOST[:PORT] for IPMI over LAN",
        )
    host = parts.hostname
    if not host:
        raise InputError(f"--target {value!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise InputError(
            f"--target {value!r}: give only scheme, host and port",
            hint="the scanner walks from /redfish/v1 itself; credentials go in --credentials",
        )
    return _Parsed(name, scheme, host, port or _DEFAULT_PORTS[scheme], value)


def read_targets_file(path: Path) -> list[str]:
    """``--targets-file``: one ``[NAME=]URL`` per line; ``#`` comments and blank lines skipped.

    A comment starts with ``#`` at the start of a line or after a space. Each line is checked
    here so that a bad one is reported as ``FILE:LINE``, without its text: a file of targets is
    often generated, and a password pasted into a URL must never reach a log.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = _COMMENT.split(line, maxsplit=1)[0].strip()
        if not entry:
            continue
        try:
            _parse_one(entry)
        except InputError:
            raise InputError(
                "not a target: expected [NAME=]https://HOST[:PORT] or [NAME=]ipmi://HOST[:PORT]",
                location=SourceLocation(path, number),
                hint="credentials go in --credentials, never in the URL",
            ) from None  # the cause quotes the line; --debug would print it
        values.append(entry)
    if not values:
        raise InputError(f"{path}: no targets (one [NAME=]URL per line)")
    return values


def _url(scheme: str, host: str, port: int) -> str:
    try:
        literal = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        literal = host
    return f"{scheme}://{literal}:{port}"


def parse_targets(values: Sequence[str], *, ipmi_probe: bool = True) -> list[BmcTarget]:
    """``--target`` values -> BMC targets (grouped per BMC, in first-mention order)."""
    parsed = [_parse_one(v) for v in values]
    redfish = [p for p in parsed if p.scheme != "ipmi"]
    by_name: dict[str, BmcTarget] = {}

    def add(target: BmcTarget, raw: str) -> None:
        previous = by_name.get(target.name)
        if previous is None:
            by_name[target.name] = target
            return
        both_redfish = bool(previous.redfish_url and target.redfish_url)
        if both_redfish or (previous.ipmi_explicit and target.ipmi_explicit):
            raise InputError(f"--target {raw!r}: BMC {target.name!r} is given twice")
        by_name[target.name] = replace(
            previous,
            redfish_url=previous.redfish_url or target.redfish_url,
            ipmi_port=target.ipmi_port if target.ipmi_explicit else previous.ipmi_port,
            ipmi_explicit=previous.ipmi_explicit or target.ipmi_explicit,
        )

    for p in redfish:
        bmc_name = p.name or _derived_name(p.host, p.scheme, p.port)
        default_ipmi = IPMI_PORT if ipmi_probe else None
        add(BmcTarget(bmc_name, p.host, _url(p.scheme, p.host, p.port), default_ipmi), p.raw)
    for p in parsed:
        if p.scheme != "ipmi":
            continue
        name: str | None = p.name
        if name is None:
            same_host = [r for r in redfish if r.host == p.host and r.name is None]
            if len(same_host) == 1:
                only = same_host[0]
                name = _derived_name(only.host, only.scheme, only.port)
            else:
                name = _derived_name(p.host, p.scheme, p.port)
        add(BmcTarget(name, p.host, None, p.port, ipmi_explicit=True), p.raw)
    return list(by_name.values())


def targets_from_inventory(
    inventory: Inventory, *, ipmi_probe: bool = True, only: Iterable[str] = ()
) -> list[BmcTarget]:
    """One target per inventory BMC (``address`` is a host, an IP or an https URL)."""
    wanted = set(only)
    targets = []
    for bmc in inventory.bmcs:
        if wanted and bmc.name not in wanted:
            continue
        p = _parse_one(bmc.address)
        if p.scheme == "ipmi":
            targets.append(BmcTarget(bmc.name, p.host, None, p.port, True, bmc.name))
            continue
        targets.append(
            BmcTarget(
                name=bmc.name,
                host=p.host,
                redfish_url=_url(p.scheme, p.host, p.port),
                ipmi_port=IPMI_PORT if ipmi_probe else None,
                inventory_name=bmc.name,
            )
        )
    return targets
