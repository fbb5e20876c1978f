"""Multi-site generated fleets: ``generate(hosts, seed, sites=N)`` with N > 1.

Each site is an Exchange 2003 routing group in AD (one administrative group
holds them all). A site has its Exchange 2003 servers, one or two of them its
bridgeheads (two from four servers on, for redundancy), and its own
greylisting Windows SMTP relay (RELAY01, RELAY02, ...). The Exchange 5.5
server, from ten hosts on, sits in the first site.

Sites are joined in a ring by routing group connectors (site k to k+1, the
last back to the first; two sites are one link). A ring rather than a hub and
spokes: each bridgehead then has at most two neighbouring sites' bridgeheads
at the other end of its connectors whatever the number of sites, so every
bridgehead pair stays probeable from both ends within the probe plan's bound of
16 peers per host; a hub's bridgeheads would face 2 x (N - 1) remote
bridgeheads, past the bound from nine sites on (the plan would drop and report
the rest). Like Exchange System Manager, each link is two one-way connectors,
one in each routing group. A connector is the raw AD object: class
msExchRoutingGroupConnector, its local and remote bridgeheads as DNs of SMTP
virtual servers (msExchSourceBridgeheadServersDN,
msExchTargetBridgeheadServersDN: knowledge collect.ad_routing_group_connectors
names the source), its destination routing group in msExchDestinationRGDN.
Each server names its routing group in msExchHomeRoutingGroup.

Conditions that stall a queue follow the mail: a server's queues lead to
servers of its own site, and only a bridgehead has queues to another site,
to the remote bridgeheads of its connectors.
"""
from __future__ import annotations

import random

from lab.generator import (
    CONDITIONS, CREDENTIALS, LEGACY_NAME, MAX_HOSTS, ORGANIZATION, _combine, _Fleet, _legacy_host, address, exchange_layers,
    relay_host)
from lab.scenario import server_dn

CONNECTOR_CLASSES = ["top", "msExchRoutingGroupConnector"]
ROUTING_GROUP_CLASSES = ["top", "msExchRoutingGroup"]
TWO_BRIDGEHEADS_FROM = 4  # Exchange servers in a site from which it has a second bridgehead


def routing_group_dn(name: str) -> str:
    org = ORGANIZATION
    return (f"CN={name},CN=Routing Groups,CN={org['administrative_group']},CN=Administrative Groups,"
            f"CN={org['name']},CN=Microsoft Exchange,CN=Services,CN=Configuration,{org['domain_dn']}")


def virtual_server_dn(server: str) -> str:
    """SMTP virtual server 1 of a server: what a connector's bridgehead attributes hold (Exchange's own
    ServerIdsToVsiIds appends CN=1,CN=SMTP,CN=Protocols to the server's DN)."""
    return f"CN=1,CN=SMTP,CN=Protocols,{server_dn(ORGANIZATION, server)}"


def ring(sites: int) -> list[tuple[int, int]]:
    """The site pairs a connector joins (1-based)."""
    return [(1, 2)] if sites == 2 else [(s, s % sites + 1) for s in range(1, sites + 1)]


def generate_sites(hosts: int, seed: int, sites: int) -> dict:
    if not 2 <= sites <= 999:
        raise ValueError(f"sites must be between 1 and 999, got {sites}")
    legacy = hosts >= 10
    n_exchange = hosts - sites - legacy
    if n_exchange < sites or hosts > MAX_HOSTS:
        raise ValueError(f"{sites} sites need between {2 * sites + (2 * sites >= 10)} and {MAX_HOSTS} hosts "
                         f"(an Exchange server and a relay each), got {hosts}")
    rng = random.Random(seed)
    width = max(2, len(str(sites)))
    group = {s: f"Site{s:0{width}d}" for s in range(1, sites + 1)}
    members: dict[int, list[str]] = {}
    relays: dict[int, str] = {}
    names: list[str] = []
    number = 0
    for s in range(1, sites + 1):
        count = n_exchange // sites + (s <= n_exchange % sites)
        members[s] = [f"EXCH{number + i:04d}" for i in range(1, count + 1)]
        number += count
        relays[s] = f"RELAY{s:0{width}d}"
        names += members[s] + [relays[s]]
    if legacy:
        names.append(LEGACY_NAME)
    addresses = {name: address(i) for i, name in enumerate(names)}
    exchange = [n for s in range(1, sites + 1) for n in members[s]]
    site_of = {n: s for s in members for n in members[s]}
    bridgeheads = {s: m[:2 if len(m) >= TWO_BRIDGEHEADS_FROM else 1] for s, m in members.items()}
    neighbours: dict[int, set[int]] = {s: set() for s in members}
    for a, b in ring(sites):
        neighbours[a].add(b)
        neighbours[b].add(a)
    remote = {bh: sorted(r for t in neighbours[s] for r in bridgeheads[t]) for s in members for bh in bridgeheads[s]}

    fleet = _Fleet(rng, exchange, addresses)
    fleet.relay = relays[1]
    fleet.relays = {n: relays[site_of[n]] for n in exchange}
    fleet.next_hops = {n: ([m for m in members[site_of[n]] if m != n], remote.get(n, [])) for n in exchange}

    def available(name: str) -> list:
        # The Exchange 5.5 server is in the first site; mail to it from elsewhere leaves through a bridgehead.
        return [build for build, needs in CONDITIONS
                if needs == "" or needs == "relay" or (needs == "legacy" and fleet.legacy and site_of[name] == 1)]

    layers = exchange_layers(fleet, set(exchange[:2]), available)
    for name in exchange:
        layers[name] = _combine(layers[name], {"ad": {"server": {
            "msExchHomeRoutingGroup": routing_group_dn(group[site_of[name]])}}})
    for s in range(1, sites + 1):
        layers[relays[s]] = relay_host(addresses[relays[s]])
    if legacy:
        layers[LEGACY_NAME] = _legacy_host(fleet)
    layers = {n: layers[n] for n in names}  # each site's servers, then its relay
    return {
        "description": f"generated by lab.generator: {hosts} hosts, seed {seed}, {sites} sites (routing groups "
                       "joined in a ring)",
        "organization": dict(ORGANIZATION),
        "defaults": dict(CREDENTIALS),
        "hosts": layers,
        "network": fleet.network,
        "ad_objects": _routing_objects(group, bridgeheads, sites),
    }


def _routing_objects(group: dict[int, str], bridgeheads: dict[int, list[str]], sites: int) -> dict[str, dict]:
    """The routing groups and, per ring link, its two one-way routing group connectors."""
    out: dict[str, dict] = {routing_group_dn(g): {"objectClass": list(ROUTING_GROUP_CLASSES), "cn": g} for g in group.values()}
    for a, b in ring(sites):
        for src, dst in ((a, b), (b, a)):
            name = f"{group[src]} to {group[dst]}"
            out[f"CN={name},CN=Connections,{routing_group_dn(group[src])}"] = {
                "objectClass": list(CONNECTOR_CLASSES), "cn": name, "cost": 1,
                "msExchSourceBridgeheadServersDN": [virtual_server_dn(n) for n in bridgeheads[src]],
                "msExchTargetBridgeheadServersDN": [virtual_server_dn(n) for n in bridgeheads[dst]],
                "msExchDestinationRGDN": routing_group_dn(group[dst]),
            }
    return out


def site_members(data: dict) -> dict[str, list[str]]:
    """{routing group name: [host]} of a fleet generate_sites made, in its order: the Exchange servers by the
    routing group AD gives them (msExchHomeRoutingGroup), each site's relay (its servers' next host, RELAYnn),
    and the Exchange 5.5 server in the first site. For tools that take a generated fleet apart by site."""
    out: dict[str, list[str]] = {}
    current = None
    for name, layer in data["hosts"].items():
        home = ((layer.get("ad") or {}).get("server") or {}).get("msExchHomeRoutingGroup")
        if home:
            current = home.split(",", 1)[0].split("=", 1)[1]
        elif name == LEGACY_NAME:
            current = next(iter(out))
        out.setdefault(current, []).append(name)
    return out
