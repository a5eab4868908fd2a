"""The media-fetch guard without a network: address classes, URL checks, per-hop vetting."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from sogni_intelligence.config import Settings
from sogni_intelligence.media import fetch
from sogni_intelligence.media.fetch import (
    FetchError,
    FetchPolicy,
    address_block_reason,
    host_allowed,
    is_own_origin,
    own_media_id,
    validate_url,
    vet,
)

POLICY = FetchPolicy(own_base_url="https://api.example.test/prefix")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "private"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", ""),  # reserved; Python files it under private
        ("255.255.255.255", ""),
        ("192.0.2.10", "private"),
        ("198.18.0.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::1", "cloud metadata"),
    ],
)
def test_blocked_addresses(address: str, reason: str) -> None:
    found = address_block_reason(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.1",  # just above CGNAT
        "172.32.0.1",  # just above 172.16/12
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of a public address
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_block_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "gopher://example.com/",
        "/relative/path.png",
        "http://",
        "https:///nohost",
        "http://user:secret@example.com/a.png",
        "http://user@example.com/a.png",
        "",
        "   ",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "https://example.com/" + "a" * 9000,
    ],
)
def test_invalid_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        validate_url(url)
    assert caught.value.status == 400


def test_non_string_url_is_refused() -> None:
    with pytest.raises(FetchError):
        validate_url(None)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.png",
        "https://example.com:8443/x?y=1",
        "HTTPS://Example.COM/a.png#frag",
    ],
)
def test_valid_urls(url: str) -> None:
    parsed = validate_url(url)
    assert parsed.scheme in ("http", "https")
    assert parsed.fragment == ""


def test_own_origin_matching() -> None:
    own = "https://api.example.test/prefix"
    assert is_own_origin(httpx.URL("https://API.example.test/any"), own)
    assert is_own_origin(httpx.URL("https://api.example.test:443/x"), own)
    assert not is_own_origin(httpx.URL("http://api.example.test/x"), own)
    assert not is_own_origin(httpx.URL("https://api.example.test:8443/x"), own)
    assert not is_own_origin(httpx.URL("https://api.example.test.evil.com/x"), own)
    assert is_own_origin(httpx.URL("http://127.0.0.1:8000/v1"), "http://127.0.0.1:8000")


def test_own_media_id() -> None:
    own = "https://api.example.test/prefix"
    url = httpx.URL("https://api.example.test/prefix/v1/media/ast_abc?exp=1&sig=2")
    assert own_media_id(url, own) == "ast_abc"
    assert own_media_id(httpx.URL("https://api.example.test/v1/media/ast_abc"), own) is None
    assert own_media_id(httpx.URL("https://other.test/prefix/v1/media/ast_abc"), own) is None
    assert own_media_id(httpx.URL("http://h:1/v1/media/x"), "http://h:1") == "x"


def test_allow_list_is_case_and_dot_insensitive() -> None:
    policy = FetchPolicy(
        own_base_url="http://127.0.0.1:8000",
        allow_hosts=fetch.normalize_hosts(["Media.Internal.", "10.0.0.5", "[fd00::5]", " "]),
    )
    assert host_allowed(httpx.URL("http://media.internal/a.png"), policy)
    assert host_allowed(httpx.URL("http://MEDIA.INTERNAL./a.png"), policy)
    assert host_allowed(httpx.URL("http://10.0.0.5:9000/a.png"), policy)
    assert host_allowed(httpx.URL("http://[fd00::5]/a.png"), policy)
    assert host_allowed(httpx.URL("http://127.0.0.1:8000/v1/media/x"), policy)  # own origin
    assert not host_allowed(httpx.URL("http://127.0.0.1:8001/"), policy)
    assert not host_allowed(httpx.URL("http://sub.media.internal/a.png"), policy)
    assert "" not in policy.allow_hosts


def test_policy_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        public_base_url="https://media.example.test/",
        media_fetch_allow_hosts=["Cache.Local"],
        media_fetch_timeout_s=7,
        media_fetch_max_redirects=2,
        max_upload_bytes=4096,
    )
    policy = FetchPolicy.from_settings(settings)
    assert policy.own_base_url == "https://media.example.test"
    assert policy.allow_hosts == frozenset({"cache.local"})
    assert (policy.timeout_s, policy.max_redirects, policy.max_bytes) == (7, 2, 4096)
    assert FetchPolicy.from_settings(settings, max_bytes=10).max_bytes == 10


class FakeDns:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(
        self, host: str, port: int
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        self.asked.append(host)
        if host not in self.answers:
            raise FetchError(f"{host} does not resolve", code="media_url_unresolvable")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(
        {
            "public.example": ["93.184.216.34"],
            "dual.example": ["93.184.216.34", "2606:2800:220:1::1"],
            "sneaky.example": ["93.184.216.34", "10.0.0.7"],
            "internal.example": ["192.168.0.10"],
            "metadata.example": ["169.254.169.254"],
            "v6meta.example": ["fd00:ec2::254"],
            "localhost": ["127.0.0.1", "::1"],
            "cache.local": ["10.1.1.1"],
        }
    )
    monkeypatch.setattr(fetch, "resolve_host", fake)
    return fake


async def test_vet_public_names_pass(dns: FakeDns) -> None:
    assert [str(a) for a in await vet(httpx.URL("https://public.example/a.png"), POLICY)] == [
        "93.184.216.34"
    ]
    assert len(await vet(httpx.URL("https://dual.example/a.png"), POLICY)) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://internal.example/a.png",
        "http://sneaky.example/a.png",  # one private answer among public ones is enough
        "http://metadata.example/latest/meta-data/",
        "http://v6meta.example/",
        "http://localhost:8000/",
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.1.1/",
        "http://0.0.0.0:8000/",
    ],
)
async def test_vet_refuses_internal_targets(dns: FakeDns, url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await vet(validate_url(url), POLICY)
    assert caught.value.status == 400
    assert caught.value.code == "media_url_blocked"
    assert "refusing" in caught.value.message


async def test_vet_does_not_resolve_ip_literals(dns: FakeDns) -> None:
    with pytest.raises(FetchError):
        await vet(validate_url("http://10.0.0.1/x"), POLICY)
    await vet(validate_url("http://8.8.8.8/x"), POLICY)
    assert dns.asked == []


async def test_vet_allow_list_and_own_origin_reach_private_addresses(dns: FakeDns) -> None:
    policy = FetchPolicy(
        own_base_url="http://localhost:8000", allow_hosts=frozenset({"cache.local"})
    )
    assert [str(a) for a in await vet(validate_url("http://cache.local/a.png"), policy)] == [
        "10.1.1.1"
    ]
    own = await vet(validate_url("http://localhost:8000/v1/media/ast_x"), policy)
    assert [str(a) for a in own] == ["127.0.0.1", "::1"]
    with pytest.raises(FetchError):  # same host, another port: not our origin
        await vet(validate_url("http://localhost:8001/"), policy)


async def test_unresolvable_host(dns: FakeDns) -> None:
    with pytest.raises(FetchError) as caught:
        await vet(validate_url("http://nowhere.example/"), POLICY)
    assert caught.value.code == "media_url_unresolvable"


async def test_real_resolver_refuses_numeric_loopback_forms() -> None:
    # getaddrinfo turns these legacy spellings into 127.0.0.1 without any network traffic
    for url in ("http://2130706433/", "http://0x7f.1/", "http://127.1/"):
        with pytest.raises(FetchError) as caught:
            await vet(validate_url(url), POLICY)
        assert caught.value.code in ("media_url_blocked", "media_url_invalid")
