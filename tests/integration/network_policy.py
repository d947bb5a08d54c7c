"""A small evaluator of Kubernetes NetworkPolicy semantics, over rendered manifests.

It answers "may this endpoint open a TCP connection to that one on this port?" as a CNI that
enforces NetworkPolicy would: the client's egress and the server's ingress must both allow it;
a pod no policy selects for a direction is open in that direction; peers are pod selectors (in
the policy's namespace), namespace selectors, both (pods in those namespaces) or IP blocks;
named ports resolve against the server pod's container ports.
"""

import ipaddress
from dataclasses import dataclass, field
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """A pod (of our namespace or another) or an address outside the cluster."""

    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # container port names -> numbers
    ip: str = "10.244.0.10"

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {NAME_LABEL: self.namespace} if self.namespace else {}


def external(ip: str) -> Endpoint:
    return Endpoint(namespace=None, ip=ip)


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def pods(rendered: list[dict[str, Any]], namespace: str) -> dict[str, Endpoint]:
    """The pod of each workload (by workload name), with its labels and named ports."""
    found = {}
    for resource in rendered:
        if resource["kind"] not in {"Deployment", "Job", "StatefulSet"}:
            continue
        template = resource["spec"]["template"]
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        labels = template["metadata"].get("labels") or {}
        found[resource["metadata"]["name"]] = Endpoint(namespace, labels, ports)
    return found


class Policies:
    def __init__(self, rendered: list[dict[str, Any]], namespace: str) -> None:
        self.namespace = namespace
        self.policies = [r for r in rendered if r["kind"] == "NetworkPolicy"]

    def selecting(self, pod: Endpoint, direction: str) -> list[dict[str, Any]]:
        if pod.namespace != self.namespace:
            return []
        return [
            p
            for p in self.policies
            if direction in p["spec"].get("policyTypes", ["Ingress"])
            and selects(p["spec"]["podSelector"], pod.labels)
        ]

    def allows(self, client: Endpoint, server: Endpoint, port: int) -> bool:
        return self._direction(client, server, port, "Egress") and self._direction(
            server, client, port, "Ingress"
        )

    def _direction(self, pod: Endpoint, peer: Endpoint, port: int, direction: str) -> bool:
        policies = self.selecting(pod, direction)
        if not policies:
            return True  # not isolated in this direction
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        server = peer if direction == "Egress" else pod
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self._peer(p, peer) for p in peers):
                    continue
                if _port_matches(rule.get("ports"), port, server):
                    return True
        return False

    def _peer(self, peer: dict[str, Any], other: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            address = ipaddress.ip_address(other.ip)
            if address not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(
                address in ipaddress.ip_network(e)
                for e in block.get("except", [])
                if ipaddress.ip_network(e).version == address.version
            )
        if other.namespace is None:
            return False  # selectors only match pods
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], other.namespace_labels):
                return False
        elif other.namespace != self.namespace:
            return False
        return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int, server: Endpoint) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        number = server.ports.get(wanted) if isinstance(wanted, str) else wanted
        if number == port or (number is not None and number <= port <= entry.get("endPort", 0)):
            return True
    return False
