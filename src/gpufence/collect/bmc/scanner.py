"""Scan a fleet of BMCs concurrently, within a time budget, and keep whatever was learned.

Per BMC, at once: a TLS probe of the HTTPS port, the IPMI probe (UDP), and the Redfish sequence
(anonymous service root, anonymous reads of a few non-root resources, then the authenticated walk
over one keep-alive connection). Intrusive steps (``--intrusive``) run after the walk, because they
need the lockout policy it reads. Everything is recorded into a :class:`BmcScan` as it arrives, so
a BMC that hangs, a per-BMC deadline, the fleet budget or Ctrl-C leave a usable partial result:
every BMC ends ``scanned``, ``partial`` or ``unreachable`` with a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpufence.collect.bmc.credentials import VENDOR_DEFAULTS, Credential, CredentialStore
from gpufence.collect.bmc.http import (
    BodyTooLarge,
    Handshake,
    HttpClient,
    TransportError,
    basic_auth,
)
from gpufence.collect.bmc.ipmi import IntrusiveIpmi, IpmiProbe, probe_ipmi, try_ipmi_intrusive
from gpufence.collect.bmc.redfish import (
    Fetch,
    RedfishReader,
    Walk,
    anonymous_probe_links,
    link_path,
    walk,
)
from gpufence.collect.bmc.targets import BmcTarget
from gpufence.collect.bmc.tls import TlsProbe, probe_tls
from gpufence.errors import InputError

__all__ = ["BmcScan", "ScanOptions", "scan_fleet", "verify_context"]


@dataclass(frozen=True)
class ScanOptions:
    """How to scan: concurrency, timeouts, budget, TLS trust and intrusive checks."""

    concurrency: int = 64
    """BMCs scanned at the same time."""
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    bmc_timeout: float = 60.0
    """Deadline for one BMC; what was read by then is kept."""
    budget: float | None = None
    """Deadline for the whole fleet (seconds)."""
    ca_bundle: Path | None = None
    insecure: bool = False
    intrusive: bool = False
    max_body: int = 4 * 1024 * 1024
    ipmi_timeout: float = 1.0


@dataclass
class BmcScan:
    """Everything learned about one BMC, filled in as the scan goes."""

    target: BmcTarget
    credential: Credential | None = None
    started: float = 0.0
    finished: float = 0.0
    root: dict[str, Any] | None = None
    root_error: str | None = None
    anonymous: dict[str, str] = field(default_factory=dict)
    """Non-root path -> what an unauthenticated GET got ('200', '401 Unauthorized', ...)."""
    walk: Walk = field(default_factory=Walk)
    walk_skipped: str | None = None
    cert_trusted: bool | None = None
    """Whether the HTTPS certificate verified against the trust store (None: not checked)."""
    tls: TlsProbe | None = None
    ipmi: IpmiProbe | None = None
    intrusive: dict[str, Any] = field(default_factory=dict)
    ipmi_intrusive: IntrusiveIpmi | None = None
    requests: int = 0
    interrupted: str | None = None
    """Why the scan of this BMC was cut short (deadline, budget, Ctrl-C)."""
    done: bool = False
    digested: bool = False
    """The ``digest`` callback has turned this scan into its result (documents released)."""

    def release(self) -> None:
        """Drop the Redfish documents (the bulk of the memory) once they are digested."""
        self.walk.by_role.clear()
        self.digested = True

    @property
    def duration(self) -> float:
        """Seconds the scan of this BMC took."""
        end = self.finished or time.perf_counter()
        return round(end - self.started, 3) if self.started else 0.0

    def state(self) -> tuple[str, str | None]:
        """('scanned' | 'partial' | 'unreachable', reason)."""
        answered = (
            self.root is not None
            or (self.tls is not None and self.tls.error is None)
            or (self.ipmi is not None and self.ipmi.answered)
        )
        if not answered:
            reasons = [r for r in (self.interrupted, self.root_error) if r]
            if self.tls and self.tls.error and not self.root_error:
                reasons.append(f"TLS: {self.tls.error}")
            if self.ipmi and self.ipmi.error and self.target.redfish_url is None:
                reasons.append(f"IPMI: {self.ipmi.error}")
            return "unreachable", "; ".join(dict.fromkeys(reasons)) or "no answer"
        problems: list[str] = []
        if self.interrupted:
            problems.append(self.interrupted)
        if self.target.redfish_url and self.root is None:
            problems.append(f"Redfish: {self.root_error or 'service root not read'}")
        if self.walk_skipped:
            problems.append(self.walk_skipped)
        if self.walk.stopped:
            problems.append(f"walk stopped: {self.walk.stopped}")
        failures = [
            f"{path}: {why}"
            for items in self.walk.failed.values()
            for path, why in items
            if not why.startswith(("404", "405", "501"))
        ]
        if failures:
            more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
            problems.append(failures[0] + more)
        if self.ipmi is not None and self.target.ipmi_explicit and not self.ipmi.answered:
            problems.append(f"IPMI: {self.ipmi.error}")
        if problems:
            return "partial", "; ".join(dict.fromkeys(problems))
        return "scanned", None


def verify_context(ca_bundle: Path | None, insecure: bool) -> ssl.SSLContext:
    """The TLS trust used for authenticated requests (verification on unless --insecure)."""
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"{ca_bundle}: cannot load CA bundle: {exc}") from None


def _client(url: str, ctx: ssl.SSLContext, opts: ScanOptions) -> HttpClient:
    # No proxies, no .netrc, no redirects: BMC traffic goes only where the target says.
    return HttpClient(
        url,
        ssl_context=ctx,
        connect_timeout=opts.connect_timeout,
        read_timeout=opts.read_timeout,
        headers={"OData-Version": "4.0"},
    )


class _Context:
    def __init__(self, opts: ScanOptions, store: CredentialStore) -> None:
        self.opts = opts
        self.store = store
        self.trusted = verify_context(opts.ca_bundle, opts.insecure)
        self.untrusted = verify_context(None, insecure=True)


async def _redfish(
    scan: BmcScan, ctx: _Context, handshake: asyncio.Future[Handshake | TransportError | None]
) -> None:
    target, opts = scan.target, ctx.opts
    assert target.redfish_url is not None
    cred = scan.credential
    auth = (cred.username, cred.password.get_secret_value()) if cred else None

    def tell(outcome: Handshake | TransportError) -> None:
        if not handshake.done():
            handshake.set_result(outcome)

    async with _client(target.redfish_url, ctx.trusted, opts) as client:
        client.on_first_connect = tell
        reader = RedfishReader(client, target.redfish_url, auth, opts.max_body)
        try:
            root = await reader.get("/redfish/v1/", anonymous=True)
            if target.scheme == "https" and not opts.insecure and root.status is not None:
                scan.cert_trusted = True  # the handshake verified against the trust store
            anon_reader = reader
            untrusted: HttpClient | None = None
            if not root.ok and root.error and root.error.startswith("TLS certificate not trusted"):
                scan.cert_trusted = False
                # Still check what anyone can read: no credentials travel on this connection.
                scan.walk_skipped = (
                    f"authenticated walk skipped: {root.error}; pass --ca-bundle or --insecure"
                )
                untrusted = _client(target.redfish_url, ctx.untrusted, opts)
                anon_reader = RedfishReader(untrusted, target.redfish_url, None, opts.max_body)
                root = await anon_reader.get("/redfish/v1/", anonymous=True)
            try:
                await _anonymous(scan, anon_reader, root)
            finally:
                if untrusted is not None:
                    scan.requests += anon_reader.requests
                    await untrusted.aclose()
            if scan.root is None or scan.walk_skipped:
                return
            if cred is None:
                scan.walk_skipped = "no credentials for this BMC: unauthenticated checks only"
                return
            await walk(reader, scan.root, scan.walk)
            if opts.intrusive:
                await _intrusive_redfish(scan, reader)
        finally:
            scan.requests += reader.requests
            if not handshake.done():
                handshake.set_result(None)  # never connected: the TLS probe makes its own


async def _anonymous(scan: BmcScan, reader: RedfishReader, root: Fetch) -> None:
    if not root.ok or root.data is None:
        scan.root_error = f"service root: {root.error}"
        return
    scan.root = root.data
    for path in anonymous_probe_links(root.data, reader.base_url):
        result = await reader.get(path, anonymous=True)
        scan.anonymous[path] = "200" if result.ok else (result.error or "no data")


def _lockout_budget(walk_: Walk) -> tuple[int, str]:
    """How many wrong passwords may be tried without locking an account (and why)."""
    service = walk_.first("account_service")
    if service is None:
        return 0, f"lockout policy unreadable ({walk_.why_missing('account_service')})"
    threshold = service.get("AccountLockoutThreshold")
    if isinstance(threshold, int):
        if threshold == 0:
            return len(VENDOR_DEFAULTS), "account lockout is off"
        # Stay two below the threshold: other failures in the window count too.
        return max(0, threshold - 2), f"lockout after {threshold} failures"
    return 0, "AccountService has no AccountLockoutThreshold; not guessing passwords"


def _vendor_hint(scan: BmcScan) -> str:
    """Vendor words from the service root and the manager (to try that vendor's default first)."""
    root = scan.root or {}
    manager = scan.walk.first("manager") or {}
    words = [root.get("Vendor"), manager.get("Manufacturer"), manager.get("Model")]
    for doc in (root, manager):
        if isinstance(doc.get("Oem"), dict):
            words += list(doc["Oem"])
    return " ".join(str(w) for w in words if w).lower()


def _candidates(vendor_hint: str) -> list[tuple[str, str, str]]:
    hint = vendor_hint.lower()
    matching = [d for d in VENDOR_DEFAULTS if d[0] != "Generic" and d[0].lower() in hint]
    return matching + [d for d in VENDOR_DEFAULTS if d not in matching]


async def _intrusive_redfish(scan: BmcScan, reader: RedfishReader) -> None:
    """Unauthenticated write probe and lockout-aware default-credential attempts."""
    account = link_path(scan.root.get("AccountService") if scan.root else None, reader.base_url)
    probe_path = account or "/redfish/v1/Systems"
    try:
        response = await reader.client.request(
            "PATCH",
            probe_path,
            body=b"{}",
            headers={"If-Match": "*", "Content-Type": "application/json"},
            max_body=reader.max_body,
        )
        scan.intrusive["anonymous_write"] = {"path": probe_path, "status": response.status}
    except (TransportError, BodyTooLarge) as exc:
        scan.intrusive["anonymous_write"] = {"path": probe_path, "error": type(exc).__name__}
    finally:
        reader.requests += 1
    budget, why = _lockout_budget(scan.walk)
    vendor = _vendor_hint(scan)
    candidates = _candidates(vendor)
    tried: list[str] = []
    worked: list[str] = []
    for _vendor, user, password in candidates[:budget]:
        tried.append(user)
        try:
            response = await reader.client.request(
                "GET",
                probe_path,
                authorization=basic_auth(user, password),
                max_body=reader.max_body,
            )
        except (TransportError, BodyTooLarge):
            break  # the BMC stopped answering: no further guesses
        finally:
            reader.requests += 1
        if response.status < 300:
            worked.append(user)
            break
    scan.intrusive["redfish_defaults"] = {
        "policy": why,
        "tried": len(tried),
        "of": len(candidates),
        "worked_users": worked,
    }


async def _ipmi(scan: BmcScan, ctx: _Context) -> None:
    port = scan.target.ipmi_port
    assert port is not None
    scan.ipmi = await probe_ipmi(scan.target.host, port, timeout=ctx.opts.ipmi_timeout)


async def _intrusive_ipmi(scan: BmcScan, ctx: _Context) -> None:
    if scan.ipmi is None or not scan.ipmi.answered or scan.target.ipmi_port is None:
        return
    threshold = (scan.walk.first("account_service") or {}).get("AccountLockoutThreshold")
    if isinstance(threshold, int) and 0 < threshold <= 2:
        scan.intrusive["ipmi"] = f"skipped: lockout after {threshold} failures"
        return
    users = [d[1] for d in VENDOR_DEFAULTS]
    if scan.credential:
        users.insert(0, scan.credential.username)
    users.append("")  # the null user
    scan.ipmi_intrusive = await try_ipmi_intrusive(
        scan.target.host,
        scan.target.ipmi_port,
        users,
        [(d[1], d[2]) for d in VENDOR_DEFAULTS],
        timeout=ctx.opts.ipmi_timeout,
    )


async def _scan_one(scan: BmcScan, ctx: _Context) -> None:
    target = scan.target
    scan.started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    if target.redfish_url:
        # The Redfish connection's handshake, shared with the TLS probe (one handshake fewer).
        handshake: asyncio.Future[Handshake | TransportError | None] = (
            asyncio.get_running_loop().create_future()
        )
        tasks.append(asyncio.create_task(_redfish(scan, ctx, handshake)))
        if target.scheme == "https":
            tasks.append(asyncio.create_task(_tls(scan, ctx, handshake)))
    if target.ipmi_port is not None:
        tasks.append(asyncio.create_task(_ipmi(scan, ctx)))
    try:
        async with asyncio.timeout(ctx.opts.bmc_timeout):
            await asyncio.gather(*tasks)
            if ctx.opts.intrusive:
                await _intrusive_ipmi(scan, ctx)
    except TimeoutError:
        scan.interrupted = f"per-BMC deadline of {ctx.opts.bmc_timeout:g} s reached"
    finally:
        for task in tasks:
            task.cancel()
        # Collect every outcome (a probe that failed while another one raised included): an
        # exception left in a task would be lost and logged as "never retrieved".
        await asyncio.gather(*tasks, return_exceptions=True)
        scan.finished = time.perf_counter()
        scan.done = True


async def _tls(
    scan: BmcScan, ctx: _Context, handshake: asyncio.Future[Handshake | TransportError | None]
) -> None:
    port = scan.target.port
    assert port is not None
    scan.tls = await probe_tls(
        scan.target.host, port, timeout=ctx.opts.connect_timeout, shared=handshake
    )


async def scan_fleet(
    targets: Sequence[BmcTarget],
    store: CredentialStore,
    opts: ScanOptions,
    *,
    on_done: Callable[[BmcScan], None] | None = None,
    stop: asyncio.Event | None = None,
    digest: Callable[[BmcScan], None] | None = None,
) -> list[BmcScan]:
    """Scan every target; returns one :class:`BmcScan` per target not digested, in target order.

    ``digest`` is called as soon as a BMC is finished (e.g. to build and write its evidence);
    a digested scan is forgotten here, so a fleet of any size holds only the ``concurrency``
    BMCs in flight. BMCs cut short by the budget or Ctrl-C (and those never started) are left
    undigested for the caller. Without ``digest`` every scan is returned.
    """
    ctx = _Context(opts, store)
    undigested: dict[int, BmcScan] = {}
    queue = iter(enumerate(targets))
    """Shared by the workers: each takes the next target when it is free (no task per target
    up front: the fleet's size costs nothing until its BMCs are scanned)."""

    async def worker() -> None:
        for index, target in queue:
            scan = BmcScan(
                target,
                store.lookup(
                    name=target.name, host=target.host, port=target.port, url=target.redfish_url
                ),
            )
            undigested[index] = scan
            try:
                await _scan_one(scan, ctx)
            except Exception as exc:  # noqa: BLE001 - one BMC's bug must not end the worker
                scan.interrupted = f"scanner error: {type(exc).__name__}: {exc}"
                scan.done = True
                continue
            if digest is not None:
                try:
                    digest(scan)
                except Exception as exc:  # noqa: BLE001 - left to the caller, with the reason
                    scan.interrupted = f"scanner error: {type(exc).__name__}: {exc}"
                    continue
                del undigested[index]
            if on_done is not None:
                on_done(scan)

    workers = [
        asyncio.create_task(worker()) for _ in range(max(1, min(opts.concurrency, len(targets))))
    ]
    waiters: list[asyncio.Future[Any]] = [asyncio.gather(*workers, return_exceptions=True)]
    stopper = asyncio.create_task(stop.wait()) if stop is not None else None
    if stopper is not None:
        waiters.append(stopper)
    try:
        await asyncio.wait(waiters, timeout=opts.budget, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reason = (
            "interrupted (Ctrl-C)"
            if stop is not None and stop.is_set()
            else (f"scan budget of {opts.budget:g} s exhausted" if opts.budget else "cancelled")
        )
        for scan in undigested.values():
            if not scan.done:  # in flight: say why before the cancellation finishes it
                scan.interrupted = reason
        for task in workers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*workers, return_exceptions=True)
        if stopper is not None:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
        for index, target in queue:  # never taken by a worker
            undigested[index] = BmcScan(target, interrupted=f"not started: {reason}")
    return [undigested[i] for i in sorted(undigested)]
