"""Fetch media from a URL a client handed us, without letting that URL reach into our network.

The guard, hop by hop:

- only `http` and `https` URLs without credentials in them;
- the host name is resolved once, and every address it resolves to must be public (not
  private, loopback, link-local, multicast, reserved, unspecified, CGNAT or a cloud metadata
  service), unless the URL is on our own public origin or its host is allow-listed;
- the connection goes to the address that was checked (the request names the IP, with the
  original `Host` header and TLS server name), so a second DNS answer cannot switch it;
- redirects are followed by hand and every hop is checked again, up to a limit;
- one overall deadline, a size cap enforced while the body streams in, and the type is decided
  from the bytes.

A signed URL of our own `/v1/media/{id}` route is answered from the asset store, not over HTTP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import httpx

from sogni_intelligence import __version__
from sogni_intelligence.errors import ServiceError
from sogni_intelligence.media.sniff import Sniffed, sniff
from sogni_intelligence.media.store import ASSET_ID, AssetRecord, AssetStore
from sogni_intelligence.observability.metrics import FETCH_REFUSALS

if TYPE_CHECKING:
    from sogni_intelligence.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

MAX_URL_LENGTH = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MEDIA_PATH = "/v1/media/"

#: Ranges the `ipaddress` flags do not name (or name too broadly), checked first.
_SPECIAL_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("169.254.169.254/32"), "cloud metadata"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "cloud metadata"),
    (ipaddress.ip_network("100.64.0.0/10"), "shared (CGNAT)"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")


class FetchError(ServiceError):
    """Why a media URL could not be used; 400 unless the size (413) or time (504) ran out."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = "media_fetch_failed",
        param: str | None = None,
    ) -> None:
        kind = "timeout_error" if status == 504 else "invalid_request_error"
        super().__init__(message, status, kind, code, param)


@dataclass(frozen=True)
class FetchPolicy:
    """What `fetch_media` may reach and how much it may read."""

    own_base_url: str
    allow_hosts: frozenset[str] = frozenset()
    timeout_s: float = 60.0
    max_redirects: int = 5
    max_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings, *, max_bytes: int | None = None) -> FetchPolicy:
        return cls(
            own_base_url=settings.resolved_public_base_url,
            allow_hosts=normalize_hosts(settings.media_fetch_allow_hosts),
            timeout_s=settings.media_fetch_timeout_s,
            max_redirects=settings.media_fetch_max_redirects,
            max_bytes=max_bytes if max_bytes is not None else settings.max_upload_bytes,
        )


@dataclass(frozen=True)
class FetchedMedia:
    data: bytes
    sniffed: Sniffed
    final_url: str
    #: Set when the URL was one of our own media URLs and the bytes came from the store.
    asset: AssetRecord | None = field(default=None)


# --- address and URL checks (pure, no network) ------------------------------------------------


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets: the form hosts are compared in."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def normalize_hosts(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_host(h) for h in hosts if h.strip())


def _translated_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 address stands for: connecting to it is
    connecting to that IPv4 address, so only that address is judged."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 endpoint inside a 6to4 or Teredo address."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_block_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be fetched from (a short description), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        translated = _translated_ipv4(ip)
        if translated is not None:
            reason = address_block_reason(translated)
            return None if reason is None else f"{reason} (as {ip})"
        tunnelled = _tunnelled_ipv4(ip)
        if tunnelled is not None:
            reason = address_block_reason(tunnelled)
            if reason is not None:
                return f"{reason} (tunnelled in {ip})"
    for network, reason in _SPECIAL_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    for flag, reason in (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
    ):
        if flag:
            return reason
    if not ip.is_global:
        return "non-public"
    return None


def validate_url(raw: object) -> httpx.URL:
    """Parse a client's media URL: http(s), a host, no user name or password."""
    if not isinstance(raw, str) or not raw.strip():
        raise FetchError("the media URL must be a non-empty string", code="media_url_invalid")
    if len(raw) > MAX_URL_LENGTH:
        raise FetchError(
            f"the media URL is longer than {MAX_URL_LENGTH} characters", code="media_url_invalid"
        )
    try:
        url = httpx.URL(raw.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(f"the media URL is malformed: {exc}", code="media_url_invalid") from exc
    if url.scheme not in _DEFAULT_PORTS:
        scheme = repr(url.scheme) if url.scheme else "a relative URL"
        raise FetchError(
            f"only http and https media URLs can be fetched, not {scheme}",
            code="media_url_invalid",
        )
    if not url.host:
        raise FetchError("the media URL has no host", code="media_url_invalid")
    if url.userinfo:
        raise FetchError(
            "media URLs with a user name or password are not accepted", code="media_url_invalid"
        )
    if url.port is not None and not 0 < url.port < 65536:
        raise FetchError(f"the media URL's port {url.port} is invalid", code="media_url_invalid")
    host = url.raw_host.decode("ascii")
    if not _HOST_NAME.match(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise FetchError(
                f"the media URL's host {url.host!r} is not a valid host name",
                code="media_url_invalid",
            ) from None
    return url.copy_with(fragment=None)


def refuse_early(raw: object, policy: FetchPolicy, param: str | None = None) -> None:
    """Refuse at the request what no fetch could ever take: a URL that is not http(s), or
    whose host is literally a loopback, private, link-local or metadata address (or a
    `localhost` name). Names that merely resolve to such addresses are caught by the fetch
    itself; this check needs no network, so a durable start can refuse before storing."""
    try:
        _refuse_literal_host(validate_url(raw), policy)
    except FetchError as exc:
        _count_refusal(exc)
        if param is None:
            raise
        raise FetchError(
            f"{param}: {exc.message}", exc.status, exc.code or "media_url_invalid", param
        ) from None


def _refuse_literal_host(url: httpx.URL, policy: FetchPolicy) -> None:
    if host_allowed(url, policy):
        return
    host = normalize_host(url.raw_host.decode("ascii"))
    if host == "localhost" or host.endswith(".localhost"):
        raise FetchError(
            f"refusing to fetch media from {host}: a loopback name", code="media_url_blocked"
        )
    try:
        reason = address_block_reason(ipaddress.ip_address(host))
    except ValueError:
        return
    if reason is not None:
        raise FetchError(
            f"refusing to fetch media from {host}: a {reason} address", code="media_url_blocked"
        )


def origin_of(url: httpx.URL) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in, for comparing origins."""
    return (url.scheme, normalize_host(url.raw_host.decode("ascii")), url.port or _default(url))


def _default(url: httpx.URL) -> int:
    return _DEFAULT_PORTS.get(url.scheme, 0)


def is_own_origin(url: httpx.URL, own_base_url: str) -> bool:
    try:
        own = httpx.URL(own_base_url)
    except (httpx.InvalidURL, ValueError):
        return False
    return bool(own.host) and origin_of(url) == origin_of(own)


def own_media_id(url: httpx.URL, own_base_url: str) -> str | None:
    """The asset id when `url` is our own `/v1/media/{id}` URL (any id text), else None."""
    if not is_own_origin(url, own_base_url):
        return None
    prefix = httpx.URL(own_base_url).path.rstrip("/") + _MEDIA_PATH
    if not url.path.startswith(prefix):
        return None
    return url.path[len(prefix) :]


def host_allowed(url: httpx.URL, policy: FetchPolicy) -> bool:
    """Whether the guard lets this URL reach any address (own origin or allow-listed host)."""
    if is_own_origin(url, policy.own_base_url):
        return True
    host = normalize_host(url.raw_host.decode("ascii"))
    return host in policy.allow_hosts or normalize_host(url.host) in policy.allow_hosts


# --- resolution and vetting -------------------------------------------------------------------


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, without duplicates."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(
            f"the media URL's host {host!r} does not resolve", code="media_url_unresolvable"
        ) from exc
    seen: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        try:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            continue
        if ip not in seen:
            seen.append(ip)
    return seen


async def vet(url: httpx.URL, policy: FetchPolicy) -> list[IPAddress]:
    """The addresses this hop may connect to; raises when the guard refuses the URL."""
    host = url.raw_host.decode("ascii")
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = await resolve_host(host, url.port or _default(url))
    if not addresses:
        raise FetchError(
            f"the media URL's host {host!r} does not resolve", code="media_url_unresolvable"
        )
    if host_allowed(url, policy):
        return addresses
    for ip in addresses:
        reason = address_block_reason(ip)
        if reason is not None:
            raise FetchError(
                f"refusing to fetch media from {host}: it resolves to {ip}, a {reason} address",
                code="media_url_blocked",
            )
    return addresses


# --- fetching ---------------------------------------------------------------------------------


async def fetch_media(
    url: str,
    *,
    policy: FetchPolicy,
    store: AssetStore | None = None,
    owner: str | None = None,
    kinds: Collection[str] | None = None,
) -> FetchedMedia:
    """The bytes behind a client's media URL, checked and typed.

    `kinds` limits the accepted media kinds (`image`, `video`, `audio`); default: all three.
    With `store`, our own media URLs are read from it: a valid signature, or `owner` owning the
    asset, is required.
    """
    try:
        return await _fetch_media(url, policy, store, owner, kinds)
    except FetchError as exc:
        _count_refusal(exc)
        raise


def _count_refusal(exc: FetchError) -> None:
    FETCH_REFUSALS.labels(exc.code or "media_fetch_failed").inc()


async def _fetch_media(
    url: str,
    policy: FetchPolicy,
    store: AssetStore | None,
    owner: str | None,
    kinds: Collection[str] | None,
) -> FetchedMedia:
    current = validate_url(url)
    if store is not None:
        local = await _from_store(current, store, owner, policy, kinds)
        if local is not None:
            return local
    return await _within_deadline(policy, _fetch_http(current, policy, kinds))


async def fetch_file(
    url: str, *, policy: FetchPolicy, check_head: Callable[[bytes], object]
) -> tuple[bytes, str]:
    """The bytes behind a URL of a file that is not media (a LoRA's weights) and the URL they
    came from, through the same guard, size cap and deadline; `check_head` refuses the wrong
    kind of file from its first 64 bytes, before the rest is read."""
    try:
        return await _within_deadline(policy, _download(validate_url(url), policy, check_head))
    except FetchError as exc:
        _count_refusal(exc)
        raise


async def _within_deadline(policy: FetchPolicy, work: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(policy.timeout_s):
            return await work
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise FetchError(
            f"fetching the media URL took longer than {policy.timeout_s:g} s",
            504,
            "media_fetch_timeout",
        ) from exc


async def fetch_into_store(
    url: str, *, policy: FetchPolicy, store: AssetStore, owner: str, label: str
) -> AssetRecord:
    """The asset behind a client's media URL (fetched and stored, or already ours). A failure
    names the reference (`label`, e.g. "media reference 2"), so a record that ends on it says
    which one."""
    try:
        fetched = await fetch_media(url, policy=policy, store=store, owner=owner)
    except FetchError as exc:
        raise FetchError(
            f"{label} ({url[:200]}): {exc.message}", exc.status, exc.code or "", exc.param
        ) from exc
    return fetched.asset or await store.put_bytes(
        owner, fetched.data, tool="media_reference", meta={"source_url": url}
    )


async def _from_store(
    url: httpx.URL,
    store: AssetStore,
    owner: str | None,
    policy: FetchPolicy,
    kinds: Collection[str] | None,
) -> FetchedMedia | None:
    asset_id = own_media_id(url, store.signer.base_url)
    if asset_id is None:
        return None
    record: AssetRecord | None = None
    if ASSET_ID.match(asset_id):
        exp, sig = url.params.get("exp"), url.params.get("sig")
        if store.signer.verify("GET", _MEDIA_PATH + asset_id, exp, sig):
            record = await store.get(asset_id)
        elif owner is not None:
            record = await store.get(asset_id, owner=owner)
    if record is None:
        raise FetchError(
            "the media URL points at this server but is unknown, expired or wrongly signed",
            code="media_url_invalid",
        )
    if record.size_bytes > policy.max_bytes:
        raise _too_large(policy.max_bytes)
    path = await store.local_path(record)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise FetchError("the stored media file is missing", code="media_url_invalid") from exc
    sniffed = _check_type(data, kinds)
    return FetchedMedia(data, sniffed, str(url), asset=record)


async def _fetch_http(
    url: httpx.URL, policy: FetchPolicy, kinds: Collection[str] | None
) -> FetchedMedia:
    data, final_url = await _download(url, policy, lambda head: _check_type(head, kinds))
    return FetchedMedia(data, _check_type(data, kinds), final_url)


async def _download(
    url: httpx.URL, policy: FetchPolicy, check_head: Callable[[bytes], object]
) -> tuple[bytes, str]:
    """GET `url`, following vetted redirects; the body, capped, and the last URL."""
    current = url
    redirects = 0
    while True:
        addresses = await vet(current, policy)
        async with _open(current, addresses, policy) as response:
            if response.is_redirect:
                if redirects >= policy.max_redirects:
                    raise FetchError(
                        f"the media URL redirected more than {policy.max_redirects} times",
                        code="media_too_many_redirects",
                    )
                redirects += 1
                current = _redirect_target(current, response.headers["location"])
                continue
            if response.status_code != 200:
                raise FetchError(
                    f"fetching the media URL answered HTTP {response.status_code}",
                    code="media_fetch_failed",
                )
            return await _read_capped(response, policy.max_bytes, check_head), str(current)


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(
            f"the media URL redirected to a malformed location: {exc}", code="media_url_invalid"
        ) from exc
    return validate_url(str(target))


@asynccontextmanager
async def _open(
    url: httpx.URL, addresses: list[IPAddress], policy: FetchPolicy
) -> AsyncIterator[httpx.Response]:
    """GET `url` from the first vetted address that accepts a connection (pinned, no DNS)."""
    host = url.raw_host.decode("ascii")
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": f"sogni-intelligence/{__version__} (media fetch)",
        "Accept": "image/*, video/*, audio/*;q=0.9, */*;q=0.5",
        "Accept-Encoding": "identity",
    }
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    failure: Exception | None = None
    for ip in addresses:
        # A fresh client per hop: no pooled connection made for another host is ever reused.
        client = httpx.AsyncClient(
            trust_env=False, follow_redirects=False, timeout=policy.timeout_s
        )
        try:
            request = client.build_request(
                "GET", url.copy_with(host=str(ip)), headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            await client.aclose()
            failure = exc
            continue
        except httpx.TimeoutException:
            await client.aclose()
            raise
        except httpx.HTTPError as exc:
            await client.aclose()
            raise FetchError(f"fetching the media URL failed: {exc}") from exc
        except BaseException:
            await client.aclose()
            raise
        try:
            yield response
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise FetchError(f"fetching the media URL failed: {exc}") from exc
        finally:
            await response.aclose()
            await client.aclose()
        return
    raise FetchError(f"could not connect to {host}: {failure}", code="media_fetch_failed")


async def _read_capped(
    response: httpx.Response, max_bytes: int, check_head: Callable[[bytes], object]
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    data = bytearray()
    checked = False
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        if not checked and len(data) >= 64:
            check_head(bytes(data[:64]))  # refuse the wrong type before reading it all
            checked = True
    return bytes(data)


def _check_type(data: bytes, kinds: Collection[str] | None) -> Sniffed:
    sniffed = sniff(data[:64])
    allowed = tuple(kinds) if kinds else ("image", "video", "audio")
    if sniffed is None or sniffed.kind not in allowed:
        what = sniffed.mime if sniffed else "not a recognised media type"
        raise FetchError(
            f"the media URL's content is {what}; expected {' or '.join(allowed)}",
            code="media_type_unsupported",
        )
    return sniffed


def _too_large(max_bytes: int) -> FetchError:
    return FetchError(
        f"the media at the URL is larger than {max_bytes} bytes", 413, "media_too_large"
    )
