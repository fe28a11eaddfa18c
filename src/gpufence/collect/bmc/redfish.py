"""Read a BMC's Redfish service by following links from the service root (async, httpx).

No vendor path is hard-coded: the walk starts at ``/redfish/v1`` and follows the standard link
properties (``Managers``, ``NetworkProtocol``, ``AccountService`` ...) and the few vendor OEM
links that lead to security summaries (``Oem.Hpe.Links.SecurityService``,
``Links.Oem.Dell.DellAttributes``). Each fetched resource gets a *role* (what it is, from the link
that led to it), and the extraction in :mod:`gpufence.collect.bmc.facts` reads roles, never URIs.

Bounded by design: one request at a time per BMC (one keep-alive connection), a cap on members
per collection and on resources per BMC, a cap on body size, no redirects, no links to other
hosts, and the walk stops at the first 401 so a wrong password is not repeated.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from gpufence.collect.bmc.http import BodyTooLarge, HttpClient, Response, TransportError, basic_auth

__all__ = [
    "COLLECTIONS",
    "EXPAND",
    "LINKS",
    "Fetch",
    "HttpxClient",
    "RedfishReader",
    "Walk",
    "anonymous_probe_links",
    "walk",
]

Json = dict[str, Any]

# role -> (dotted link property, role of the linked resource); '[]' = every element of a list.
LINKS: dict[str, tuple[tuple[str, str], ...]] = {
    "root": (
        ("Systems", "systems"),
        ("Managers", "managers"),
        ("Chassis", "chassis_collection"),
        ("AccountService", "account_service"),
        ("SessionService", "session_service"),
        ("UpdateService", "update_service"),
        ("CertificateService", "certificate_service"),
        ("ComponentIntegrity", "component_integrity_collection"),
        ("EventService", "event_service"),
    ),
    "system": (("SecureBoot", "secure_boot"),),
    "manager": (
        ("NetworkProtocol", "network_protocol"),
        ("EthernetInterfaces", "manager_nics"),
        ("HostInterfaces", "host_interfaces"),
        ("SecurityPolicy", "security_policy"),
        ("SharedNetworkPorts", "shared_ports"),
        ("Oem.Hpe.Links.SecurityService", "hpe_security_service"),
        ("Oem.Hpe.Links.SNMPService", "hpe_snmp"),
        ("Oem.Hpe.Links.DateTimeService", "hpe_datetime"),
        ("Links.Oem.Dell.DellAttributes[]", "dell_attributes"),
    ),
    "network_protocol": (("HTTPS.Certificates", "https_certificates"),),
    "account_service": (("Accounts", "accounts"),),
    "update_service": (("FirmwareInventory", "firmware_inventory"),),
    "event_service": (("Subscriptions", "event_subscriptions"),),
    "hpe_security_service": (
        ("Links.HttpsCert", "hpe_https_cert"),
        ("Links.SecurityDashboard", "hpe_dashboard"),
    ),
    "hpe_dashboard": (("SecurityParameters", "hpe_security_params"),),
}

# collection role -> (member role, most members read). A cap of 0 reads only the count.
COLLECTIONS: dict[str, tuple[str, int]] = {
    "systems": ("system", 8),
    "managers": ("manager", 4),
    "chassis_collection": ("chassis", 4),
    "accounts": ("account", 32),
    "firmware_inventory": ("firmware", 64),
    "manager_nics": ("manager_nic", 8),
    "host_interfaces": ("host_interface", 8),
    "https_certificates": ("https_certificate", 4),
    "component_integrity_collection": ("component_integrity", 16),
    "hpe_security_params": ("hpe_security_param", 32),
    "event_subscriptions": ("event_subscription", 0),
    "shared_ports": ("shared_port", 0),
}

MAX_RESOURCES = 300

# role -> the role whose resource links to it (to explain a missing resource by its parent).
PARENTS: dict[str, str] = {
    **{child: parent for parent, links in LINKS.items() for _, child in links},
    **{member: collection for collection, (member, _) in COLLECTIONS.items()},
}


@dataclass(frozen=True)
class Fetch:
    """One Redfish GET: status, JSON body or the error."""

    path: str
    status: int | None
    data: Json | None
    error: str | None
    """None when the answer was 2xx with a JSON object."""

    @property
    def ok(self) -> bool:
        """Whether the GET returned a JSON document."""
        return self.error is None and self.data is not None


_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}


class HttpxClient:
    """:class:`HttpClient`'s interface over an ``httpx.AsyncClient`` (tests serve captures
    through httpx's ``MockTransport``; the scanner uses :class:`HttpClient`)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        *,
        authorization: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        max_body: int = 4 * 1024 * 1024,
    ) -> Response:
        """One request through httpx, answered in the scanner's response shape."""
        sent = {**(headers or {}), **({"Authorization": authorization} if authorization else {})}
        try:
            async with self.client.stream(
                method, self.base_url + path, content=body, headers=sent
            ) as resp:
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_body:
                    raise BodyTooLarge(
                        resp.status_code, f"body of {declared} bytes exceeds the cap"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():  # decoded: the cap bounds memory
                    size += len(chunk)
                    if size > max_body:
                        raise BodyTooLarge(resp.status_code, f"body exceeds {max_body} bytes")
                    chunks.append(chunk)
                return Response(
                    resp.status_code,
                    {k.lower(): v for k, v in resp.headers.items()},
                    b"".join(chunks),
                )
        except httpx.HTTPError as exc:
            raise _from_httpx(exc) from None

    async def aclose(self) -> None:
        """Close the underlying httpx client."""
        await self.client.aclose()


def _from_httpx(exc: httpx.HTTPError) -> TransportError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return TransportError("connect_timeout", "connect timeout (TCP or TLS handshake)")
    if isinstance(exc, httpx.ReadTimeout):
        return TransportError("read_timeout", "read timeout (no answer)")
    if isinstance(exc, httpx.TimeoutException):
        return TransportError("read_timeout", f"timeout ({type(exc).__name__})")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(")[0].strip()
        return TransportError(
            "tls_untrusted", f"TLS certificate not trusted ({detail or 'verify failed'})"
        )
    if isinstance(exc, httpx.ConnectError):
        return TransportError("connect", f"cannot connect ({text})")
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransportError("dropped", f"connection dropped by the BMC ({text})")
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return TransportError("reset", f"connection reset ({text or 'read error'})")
    return TransportError("protocol", f"{type(exc).__name__}: {text}")


Client = HttpClient | HttpxClient


class RedfishReader:
    """GETs against one BMC with a size cap and readable errors (never raises transport errors)."""

    def __init__(
        self,
        client: Client | httpx.AsyncClient,
        base_url: str,
        auth: tuple[str, str] | None,
        max_body: int = 4 * 1024 * 1024,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client: Client = (
            HttpxClient(client, self.base_url) if isinstance(client, httpx.AsyncClient) else client
        )
        self._authorization = basic_auth(*auth) if auth else None
        self.max_body = max_body
        self.requests = 0
        self.seconds = 0.0

    @property
    def has_credentials(self) -> bool:
        """Whether a credential is configured for this BMC."""
        return self._authorization is not None

    async def get(self, path: str, *, anonymous: bool = False) -> Fetch:
        """GET ``path`` (with the session or anonymously), bounded in time and size."""
        self.requests += 1
        started = time.perf_counter()
        try:
            return await self._get(path, None if anonymous else self._authorization)
        finally:
            self.seconds += time.perf_counter() - started

    async def _get(self, path: str, authorization: str | None) -> Fetch:
        try:
            resp = await self.client.request(
                "GET", path, authorization=authorization, max_body=self.max_body
            )
        except TransportError as exc:
            return Fetch(path, None, None, str(exc))
        except BodyTooLarge as exc:
            if exc.status < 300:
                return Fetch(path, exc.status, None, str(exc))
            resp = Response(exc.status, {}, b"")  # the status says what matters, not the page
        status = resp.status
        if 300 <= status < 400:
            where = resp.headers.get("location", "?")
            return Fetch(path, status, None, f"{status} redirect to {where} (not followed)")
        if status >= 400:
            reason = _REASONS.get(status, "server error" if status >= 500 else "error")
            return Fetch(path, status, None, f"{status} {reason}")
        try:
            data = json.loads(resp.body.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            return Fetch(path, status, None, f"malformed JSON ({str(exc)[:80]})")
        if not isinstance(data, dict):
            return Fetch(path, status, None, "JSON is not an object")
        return Fetch(path, status, data, None)


def _links_at(document: Json, dotted: str) -> list[Any]:
    """Values of a dotted property path; a trailing '[]' spreads a list."""
    spread = dotted.endswith("[]")
    node: Any = document
    for part in dotted.removesuffix("[]").split("."):
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    if spread:
        return list(node) if isinstance(node, list) else []
    return [node]


def link_path(value: Any, base_url: str) -> str | None:
    """The same-origin path of an ``{"@odata.id": ...}`` link, else None."""
    target = value.get("@odata.id") if isinstance(value, dict) else None
    if not isinstance(target, str) or not target:
        return None
    if "://" in target:
        here, there = urlsplit(base_url), urlsplit(target)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            return None  # never follow a link to another host
        target = there.path
    if not target.startswith("/redfish/"):
        return None
    return target


def _key(path: str) -> str:
    return path.rstrip("/") or "/"


@dataclass
class Walk:
    """What the walk read, by role, and what it could not read (kept as it goes)."""

    by_role: dict[str, list[tuple[str, Json]]] = field(default_factory=dict)
    failed: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """role -> [(path, why)] for fetches that failed."""
    absent: dict[str, str] = field(default_factory=dict)
    """role -> why it was never fetched (no link, cap reached)."""
    counts: dict[str, int] = field(default_factory=dict)
    """collection role -> Members@odata.count (or len(Members))."""
    fetched: list[str] = field(default_factory=list)
    stopped: str | None = None
    """Why the walk stopped early (401, deadline, resource cap)."""

    def first(self, role: str) -> Json | None:
        """The first document read for ``role``, None when none was."""
        items = self.by_role.get(role)
        return items[0][1] if items else None

    def all(self, role: str) -> list[Json]:
        """Every document read for ``role``."""
        return [doc for _, doc in self.by_role.get(role, [])]

    def why_missing(self, role: str) -> str:
        """Why no document for ``role`` was read (failed, absent, or its parent missing)."""
        parent = PARENTS.get(role)
        if (
            role not in self.failed
            and role not in self.absent
            and parent is not None
            and parent not in self.by_role
        ):
            return self.why_missing(parent)
        if role in self.failed:
            path, why = self.failed[role][0]
            return f"{path}: {why}"
        if role in self.absent:
            return self.absent[role]
        if self.stopped:
            return f"not read: {self.stopped}"
        return f"no {role.replace('_', ' ')} resource"


def anonymous_probe_links(root: Json, base_url: str) -> list[str]:
    """Non-root resources to try without credentials (RPV SEC_READ_REQUIRES_AUTH, trimmed)."""
    wanted = ("Links.Sessions", "AccountService", "Systems", "Managers")
    paths: list[str] = []
    for dotted in wanted:
        for value in _links_at(root, dotted):
            path = link_path(value, base_url)
            if path and path not in paths:
                paths.append(path)
    return paths


EXPAND = "?$expand=.($levels=1)"
_EXPAND_REFUSED = (400, 404, 405, 501)
"""Answers to an ``$expand`` request after which the plain GET is tried (DSP0266 allows a
service to reject a query it does not support on a resource)."""


def expand_suffix(root: Json) -> str:
    """``$expand`` query for collections when the service root advertises it, else ''."""
    features = root.get("ProtocolFeaturesSupported")
    expand = features.get("ExpandQuery") if isinstance(features, dict) else None
    if isinstance(expand, dict) and (expand.get("NoLinks") or expand.get("ExpandAll")):
        if expand.get("Levels") or expand.get("ExpandAll"):
            return EXPAND
    return ""


def _is_expanded(member: Any) -> bool:
    return isinstance(member, dict) and any(k != "@odata.id" for k in member)


async def walk(reader: RedfishReader, root: Json, into: Walk) -> Walk:
    """Authenticated BFS from the (already read) service root, filling ``into`` as it goes.

    Collections are read with ``$expand=.($levels=1)`` where the service root advertises it
    (one request instead of one per member); members that come back unexpanded are fetched.
    """
    into.by_role.setdefault("root", []).append(("/redfish/v1", root))
    seen: set[str] = {"/redfish/v1"}
    queue: deque[tuple[str, str]] = deque()
    expand = expand_suffix(root)

    def enqueue_links(role: str, document: Json) -> None:
        member = COLLECTIONS.get(role)
        if member is not None:
            member_role, cap = member
            members = document.get("Members")
            members = members if isinstance(members, list) else []
            count = document.get("Members@odata.count")
            into.counts[role] = count if isinstance(count, int) else len(members)
            for value in members[:cap]:
                path = link_path(value, reader.base_url)
                if not path or _key(path) in seen:
                    continue
                seen.add(_key(path))
                if _is_expanded(value):
                    into.by_role.setdefault(member_role, []).append((path, value))
                    enqueue_links(member_role, value)
                else:
                    queue.append((path, member_role))
            if len(members) > cap > 0:
                into.absent.setdefault(member_role, f"only the first {cap} {role} members read")
            return
        for dotted, child in LINKS.get(role, ()):
            values = _links_at(document, dotted)
            paths = [p for p in (link_path(v, reader.base_url) for v in values) if p]
            if not paths:
                into.absent.setdefault(child, f"{role.replace('_', ' ')} has no {dotted} link")
            for path in paths:
                if _key(path) not in seen:
                    seen.add(_key(path))
                    queue.append((path, child))

    enqueue_links("root", root)
    while queue:
        if len(into.fetched) >= MAX_RESOURCES:
            into.stopped = f"resource cap ({MAX_RESOURCES}) reached"
            break
        path, role = queue.popleft()
        collection = COLLECTIONS.get(role)
        request = path + expand if expand and collection and collection[1] > 0 else path
        result = await reader.get(request)
        into.fetched.append(request)
        if request != path and result.status in _EXPAND_REFUSED:
            # Some services advertise $expand yet refuse it on some collections: read plainly.
            request = path
            result = await reader.get(request)
            into.fetched.append(request)
        if not result.ok or result.data is None:
            why = result.error or "no data"
            into.failed.setdefault(role, []).append((path, why))
            if result.status == 401:
                # Stop at the first rejection: repeating a wrong password can lock the account.
                into.stopped = "credentials rejected (401)"
                break
            continue
        into.absent.pop(role, None)
        into.by_role.setdefault(role, []).append((path, result.data))
        enqueue_links(role, result.data)
    return into
