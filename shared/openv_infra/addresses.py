"""Which network addresses a URL given by a user may reach: the SSRF guard's decisions. Pure.

Shared by every service that connects to a URL a user named (the storage service's result
imports, the webhooks service's deliveries) and by the gateway, which refuses such a URL at the
door. The guard itself (`guarded_network`) applies them where the connection is made.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Never reachable as a public server, whatever `is_global` says in this Python version.
_NON_PUBLIC: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(net)
    for net in (
        # IPv4 (RFC 6890 and friends)
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT (also Alibaba's metadata 100.100.100.200)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        # IPv6
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible block
        "::ffff:0:0/96",  # IPv4-mapped (judged by the embedded address before this list)
        "::ffff:0:0:0/96",  # SIIT translated
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local (AWS IMDS is fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address reaches through a translation mechanism."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address: not private, loopback, link-local, multicast,
    reserved, documentation, shared (CGNAT), nor an IPv6 form that embeds such an address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a socket to it reaches the IPv4 address
            return is_public(address.ipv4_mapped)
        if address.scope_id:
            return False
        if not all(is_public(v4) for v4 in embedded_ipv4(address)):
            return False
    if any(address in network for network in _NON_PUBLIC if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses an import may connect to.

    Public addresses always; non-public ones only when `allow_private` is set (a local stack or
    a trusted private network) or when inside one of `allowed_networks` (e.g. an internal file
    host's range). The unspecified address and multicast are never connectable.
    """

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    def allows(self, address: IPAddress) -> bool:
        if address.is_unspecified or address.is_multicast:
            return False
        if is_public(address):
            return True
        if self.allow_private:
            return True
        return any(
            address in network
            for network in self.allowed_networks
            if network.version == address.version
        )


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def parse_networks(texts: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR ranges from their text (a setting's JSON list); ValueError on a bad one."""
    return tuple(ipaddress.ip_network(text) for text in texts)
