"""The address policy: public addresses by default, exactly the listed networks, or everything."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from soundmark.net import AddressPolicy, is_public_ip, parse_networks
from soundmark.settings import Settings


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_public_ip_predicate() -> None:
    for addr in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"):
        assert is_public_ip(ip(addr)), addr
    for addr in ("127.0.0.2", "::7f00:1", "100.127.255.255", "198.18.0.1", "192.0.2.1", "ff02::1", "10.1.2.3"):
        assert not is_public_ip(ip(addr)), addr


def test_allow_list_admits_exactly_the_listed_networks() -> None:
    policy = AddressPolicy(networks=parse_networks(["127.0.0.2/32", "10.1.2.0/24"]))
    for addr in ("127.0.0.2", "::ffff:127.0.0.2", "10.1.2.0", "10.1.2.255", "8.8.8.8"):
        assert policy.allows(ip(addr)), addr
    # Loopback and private neighbours of the listed ones stay refused.
    for addr in ("127.0.0.1", "127.0.0.3", "::1", "10.1.3.1", "10.1.1.255", "192.168.0.1", "169.254.169.254"):
        assert not policy.allows(ip(addr)), addr


def test_default_and_allow_all() -> None:
    assert not AddressPolicy().allows(ip("127.0.0.1"))
    assert AddressPolicy().allows(ip("1.1.1.1"))
    everything = AddressPolicy(allow_all=True)
    assert all(everything.allows(ip(a)) for a in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254"))


def test_ipv6_networks_are_matched_as_ipv6() -> None:
    policy = AddressPolicy(networks=parse_networks(["fd00:1::/32"]))
    assert policy.allows(ip("fd00:1::5"))
    assert not policy.allows(ip("fd00:2::5"))
    assert not policy.allows(ip("127.0.0.1"))


def test_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDMARK_ALLOWED_NETWORKS", "127.0.0.0/8, 10.1.2.3/24")
    s = Settings()
    assert s.allowed_networks == ("127.0.0.0/8", "10.1.2.3/24")
    policy = AddressPolicy.from_settings(s)
    assert policy == AddressPolicy(False, parse_networks(["127.0.0.0/8", "10.1.2.0/24"]))
    assert policy.allows(ip("127.5.5.5")) and policy.allows(ip("10.1.2.9")) and not policy.allows(ip("10.1.3.9"))
    assert AddressPolicy.from_settings(Settings(allow_private_urls=True)).allow_all
    assert Settings(allowed_networks=()).allowed_networks == ()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "localhost", "10.0.0.0/8;rm"])
def test_setting_refuses_what_is_not_a_network(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("SOUNDMARK_ALLOWED_NETWORKS", f"127.0.0.0/8,{bad}")
    with pytest.raises(ValidationError, match="allowed_networks"):
        Settings()
