"""Which server probes which on port 25: the mail's own routes, a small sample, and enough probers per server.

The full mesh (every server probes every other) costs N x (N - 1) probes and a
request per host that grows with N. The mail plan keeps what the causes need:

- each server probes the peers it exchanges mail with (its routes: its queues
  and Exchange links, the hosts its Event 4006 names, its smart host, and what
  the inventory says with mailflow_sends_to; and the servers whose routes lead
  to it), learned from the previous audit's `routes` or from the inventory,
  since the probes travel in the same command as the snapshot that would show
  them;
- plus a small deterministic sample of other peers, for coverage;
- and every server is probed by at least `min_inbound` peers, so the inbound
  causes (a silent banner, a blocked port, a stopped service) stay decidable.

Every host probes at most `max_peers` peers whatever the fleet's size: routes
past that bound are left out and said so (`dropped`), and the causes that need
such a pair come out unknown. Pure and deterministic: the same fleet, routes
and settings give the same plan on every controller and in every job slice.
"""
from __future__ import annotations

import hashlib
import json
import random
from typing import Any, Iterable

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import atomic_write

MODES = ("auto", "mesh", "mail")
DEFAULTS = {
    "mode": "auto",
    "min_inbound": 3,     # probers per server: one silent prober is noise, three make a pattern
    "sample": 2,          # peers each server probes beyond its routes
    "max_peers": 16,      # probes per host, whatever N: one request, well inside WinRM 2.0's envelope
    "mesh_max_hosts": 30,  # auto: the mesh up to this many hosts (870 probes), the mail plan above
}
MESH = "mesh"
SAMPLE = "sample"
INBOUND = "inbound coverage"
FIXED = "inventory mailflow_probe_peers"


class PlanError(ValueError):
    pass


def settings(overrides: dict | None = None) -> dict:
    """DEFAULTS with the inventory's overrides, checked."""
    out = dict(DEFAULTS)
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if out["mode"] not in MODES:
        raise PlanError(f"mailflow_probe_plan must be one of {', '.join(MODES)}, not {out['mode']!r}")
    for key in ("min_inbound", "sample", "max_peers", "mesh_max_hosts"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 0:
            raise PlanError(f"probe plan setting {key} must be a whole number >= 0, not {out[key]!r}")
    if out["max_peers"] < 1:
        raise PlanError("mailflow_probe_max_peers must be at least 1")
    if out["min_inbound"] > out["max_peers"]:
        raise PlanError(f"mailflow_probe_min_inbound ({out['min_inbound']}) cannot exceed mailflow_probe_max_peers "
                        f"({out['max_peers']})")
    return out


def _rng(*parts: str) -> random.Random:
    # Seeded from the names (not Python's salted hash()), so every controller and slice draws the same.
    return random.Random(hashlib.sha256("\0".join(parts).encode("utf-8")).digest())


def plan(sources: Iterable[str], targets: Iterable[str], routes: dict[str, dict[str, list[str]]] | None = None,
         options: dict | None = None, slow: Iterable[str] | None = None, fixed: dict[str, list[str]] | None = None,
         others: Iterable[str] | None = None, unaddressed: Iterable[str] | None = None) -> dict[str, Any]:
    """The probe plan.

    sources: the servers that probe (the managed ones); targets: every server that may be probed (managed and
    unmanaged); routes: {sender: {receiver: [why]}} (routes_from_audit, routes_from_inventory, merge_routes);
    options: settings() overrides; slow: servers whose probes waited out their timeout in an earlier audit
    (slow_from_audit); fixed: {source: [targets]} the inventory names for a host (mailflow_probe_peers): that host
    probes exactly those, whatever the mode, routes and bounds say, and is never drawn as a prober, while the
    other servers' coverage counts its probes.
    A job slice sees only its own servers. others: the managed servers of the rest of the fleet (known from an
    earlier audit): planned as probers too, so that every slice draws the same whole-fleet plan and its coverage
    is shared rather than repeated per slice, but their rows are their own slice's and are left out; unaddressed:
    the targets this run has no name or address to connect to: a source's pairs to them are not probes, and go
    to `unaddressed` (coverage counts without them).
    Returns {"mode" (mesh or mail), "requested", "settings", "pairs": {source: {target: [why]}},
    "dropped": {source: {target: [why]}} (routes past max_peers), "unaddressed": {source: {target: [why]}},
    "short": {target: probers} (servers below min_inbound: too few sources could take another), "slow"}.
    """
    opts = settings(options)
    own = sorted(set(sources))
    srcs = sorted(set(own) | set(others or ()))
    tgts = sorted(set(targets) | set(srcs))
    mode = opts["mode"]
    if mode == "auto":
        mode = MESH if len(tgts) <= opts["mesh_max_hosts"] else "mail"
    slow_set = set(slow or ()) & set(tgts)
    # The inventory's choice for a host stands as it is: the plan only counts it and plans around it.
    pinned = {s: {str(t): [FIXED] for t in (fixed or {})[s] if str(t) != s} for s in own if (fixed or {}).get(s)}
    if mode == MESH:
        pairs = {s: pinned[s] if s in pinned else {t: [MESH] for t in tgts if t != s} for s in srcs}
        dropped: dict[str, dict[str, list[str]]] = {}
    else:
        pairs, dropped = _mail(srcs, tgts, routes or {}, opts, slow_set, pinned)
    cannot = set(unaddressed or ())
    lost: dict[str, dict[str, list[str]]] = {}
    for s in own:
        for t in [t for t in pairs[s] if t in cannot]:
            lost.setdefault(s, {})[t] = pairs[s].pop(t)
    return {"mode": mode, "requested": opts["mode"], "settings": opts,
            "pairs": {s: dict(sorted(pairs[s].items())) for s in own},
            "dropped": {s: d for s, d in dropped.items() if s in own}, "unaddressed": lost,
            "short": _short(pairs, tgts, opts["min_inbound"]), "slow": sorted(slow_set)}


def _mail(srcs: list[str], tgts: list[str], routes: dict, opts: dict, slow_set: set[str],
          pinned: dict[str, dict[str, list[str]]]) -> tuple[dict, dict]:
    """(pairs, dropped) of the mail plan for every source: routes from both ends, a sample, then coverage."""
    known = set(tgts)
    pairs: dict[str, dict[str, list[str]]] = {s: dict(pinned.get(s) or {}) for s in srcs}
    dropped: dict[str, dict[str, list[str]]] = {}
    free = [s for s in srcs if s not in pinned]  # the sources the plan may give routes, a sample and coverage
    limit = opts["max_peers"]
    # Mail between two servers goes both ways (replies, non-delivery reports, a connector's two ends), and a
    # stall is often told by the other end's probe: so a route is probed from both its ends.
    back: dict[str, dict[str, list[str]]] = {}
    for sender, peers in sorted(routes.items()):
        for receiver, reasons in sorted((peers or {}).items()):
            if sender in known and receiver != sender:
                back.setdefault(receiver, {})[sender] = [f"route back: {sender} sends to it"
                                                         + (f" ({reasons[0]})" if reasons else "")]
    for s in free:
        mine = {t: list(why) for t, why in (routes.get(s) or {}).items() if t in known and t != s}
        for t, why_back in (back.get(s) or {}).items():
            if t not in mine:
                mine[t] = why_back
        # Past the bound, the routes with the most evidence first (a stalled queue and its 4006s before a quiet
        # link, a host's own routes before the routes back to it).
        order = sorted(mine, key=lambda t: (mine[t][0].startswith("route back"), -len(mine[t]), t))
        for t in order[:limit]:
            pairs[s][t] = mine[t]
        if order[limit:]:
            dropped[s] = {t: mine[t] for t in order[limit:]}
    # A probe of a filtered or mute peer waits out its timeout (5 s), and a host's probes run together: the
    # sample leaves such peers out, and their inbound coverage goes to hosts already waiting on one, so a few
    # hosts wait once instead of many hosts each waiting (the snapshot task's wall time is mostly these waits).
    room = min(opts["sample"], max(0, len(tgts) - 1))
    for s in free:
        rng = _rng("sample", s)
        want = min(room, limit - len(pairs[s]))
        tries = 0
        while want > 0 and tries < 8 * room + 16:
            t = tgts[rng.randrange(len(tgts))]
            tries += 1
            if t != s and t not in pairs[s] and t not in slow_set:
                pairs[s][t] = [SAMPLE]
                want -= 1
    inbound: dict[str, int] = {t: 0 for t in tgts}
    for s in srcs:
        for t in pairs[s]:
            if t in inbound:  # a pinned peer outside the fleet (an FQDN or address) covers no server
                inbound[t] += 1
    waiting = {s for s in free if slow_set & set(pairs[s])}

    def add_prober(s, t) -> bool:
        """s probes t for coverage, when it can (not itself, not already, not full)."""
        if s == t or t in pairs[s] or len(pairs[s]) >= limit:
            return False
        pairs[s][t] = [INBOUND]
        inbound[t] += 1
        if t in slow_set:
            waiting.add(s)
        return True

    for t in tgts:
        need = opts["min_inbound"] - inbound[t]
        if need <= 0:
            continue
        if t in slow_set:
            for s in sorted(waiting, key=lambda c: (len(pairs[c]), c)):
                if need <= 0:
                    break
                need -= add_prober(s, t)
        # Probers drawn for this target, the less busy of two draws each time (so no host collects far more than
        # its share), skipping those already probing it or full; a bounded number of draws keeps this O(N), then
        # a scan makes sure a free prober is found when one exists.
        rng, tries = _rng("inbound", t), 0
        candidates = free
        while need > 0 and len(candidates) > 1 and tries < 4 * opts["min_inbound"] + 16:
            s = min((candidates[rng.randrange(len(candidates))] for _unused in range(2)), key=lambda c: len(pairs[c]))
            tries += 1
            need -= add_prober(s, t)
        for s in sorted(candidates, key=lambda c: (len(pairs[c]), c)) if need > 0 else ():
            if need <= 0:
                break
            need -= add_prober(s, t)
    return pairs, dropped


def _short(pairs: dict[str, dict[str, list[str]]], targets: list[str], min_inbound: int) -> dict[str, int]:
    """{target: probers} for the targets fewer than min_inbound sources probe."""
    inbound = {t: 0 for t in targets}
    for peers in pairs.values():
        for t in peers:
            if t in inbound:
                inbound[t] += 1
    return {t: n for t, n in inbound.items() if n < min_inbound}


# What the planner reads of each host's inventory variables.
INVENTORY_VARS = ("mailflow_sends_to", "mailflow_smarthost_expected", "mailflow_fqdn", "ansible_host", "mailflow_probe_peers")


def for_inventory(servers: list[str], unmanaged: list[str], hostvars: dict[str, dict], options: dict | None = None,
                  earlier: dict | None = None, earlier_source: str | None = None, fleet: dict | None = None,
                  fleet_source: str | None = None) -> dict[str, Any]:
    """The plan of a run over these inventory hosts (what mailflow.exchange.probe_plan saves): the routes an
    earlier audit learned (earlier: its audit.json, read from earlier_source) and those the inventory declares,
    the servers it waited on, and each host's mailflow_probe_peers; plus where its routes came from.

    fleet: an earlier audit.json (read from fleet_source) whose servers complete the fleet, for a job slice whose
    inventory holds only its own: they are planned (the managed ones as the probers their own slice runs), and this run's servers probe
    them at the name or address in `addresses` ({server: target}); one without is listed in `unaddressed`."""
    names = list(dict.fromkeys(list(servers) + list(unmanaged)))
    declared = {n: {k: hostvars[n].get(k) for k in INVENTORY_VARS} for n in names if n in hostvars}
    routes = merge_routes(routes_from_audit(earlier), routes_from_inventory(declared, names))
    rest = {n: h for n, h in fleet_from_audit(fleet).items() if n not in names}
    addresses = {n: h["target"] for n, h in rest.items() if h["target"]}
    out = plan(servers, names + list(rest), routes, options, slow=slow_from_audit(earlier),
               fixed=fixed_peers(declared, servers), others=[n for n, h in rest.items() if h["managed"]],
               unaddressed=[n for n in rest if n not in addresses])
    from_inventory = any(d.get("mailflow_sends_to") or d.get("mailflow_smarthost_expected") for d in declared.values())
    out["routes_source"] = " and ".join(s for s in (earlier_source, "the inventory" if from_inventory else None) if s) or None
    out["addresses"] = addresses
    out["fleet_source"] = (fleet_source or "an earlier audit") if rest else None
    return out


def fleet_from_audit(doc: dict | None) -> dict[str, dict]:
    """{server: {"managed", "target"}} of an earlier audit.json: target is what its peers' probes connected to
    (probe_target: the inventory's mailflow_fqdn or ansible_host), else the FQDN the host reported (platform.fqdn,
    audits from before probe_target), else None: the audit knew no name to connect to."""
    hosts = (doc or {}).get("hosts")
    if not isinstance(hosts, dict):
        return {}
    return {str(n): {"managed": bool(h.get("managed")),
                     "target": h.get("probe_target") or (h.get("platform") or {}).get("fqdn") or None}
            for n, h in hosts.items() if isinstance(h, dict)}


def probe_peers(the_plan: dict, source: str) -> list:
    """The peers source probes as the snapshot action takes them: an inventory name (it finds the name to
    connect to in hostvars), or {name, target} for a server of another job slice, which hostvars lacks."""
    addresses = the_plan.get("addresses") or {}
    return [{"name": t, "target": addresses[t]} if t in addresses else t for t in peers_of(the_plan, source)]


def fixed_peers(hostvars: dict[str, dict], servers: Iterable[str]) -> dict[str, list[str]]:
    """{server: [peer names]} of the servers whose inventory names their peers (mailflow_probe_peers: names, or
    {name, target} as the snapshot action takes them)."""
    out = {}
    for n in servers:
        peers = (hostvars.get(n) or {}).get("mailflow_probe_peers") or []
        names = [str(p.get("name")) if isinstance(p, dict) else str(p) for p in peers]
        if names:
            out[n] = names
    return out


def write(path: str, the_plan: dict) -> None:
    """The plan as JSON at path, whole or not at all: the audit (and every slice's) reads it beside the snapshots.
    Serialized before anything is written, so a plan that cannot be leaves the earlier file as it was."""
    atomic_write(path, json.dumps(the_plan, indent=1, sort_keys=True) + "\n")


def merge_plans(plans: list[dict]) -> dict | None:
    """One plan from the plans of several runs over parts of a fleet (AWX job slices collecting into one folder):
    each source's pairs as its own run planned them. None for no plans."""
    plans = [p for p in plans if isinstance(p, dict)]
    if not plans:
        return None
    if len(plans) == 1:
        return plans[0]
    out = dict(plans[0], pairs={}, dropped={}, unaddressed={}, short={}, slow=[], addresses={})
    modes = sorted({str(p.get("mode")) for p in plans})
    out["mode"] = modes[0] if len(modes) == 1 else "mail"  # slices that planned differently: no longer one mesh
    for p in plans:
        for key in ("pairs", "dropped", "unaddressed", "addresses"):
            out[key].update(p.get(key) or {})
        # Each slice counts the whole fleet's probers less the probes it could not make: the fewest is the nearest.
        for t, n in (p.get("short") or {}).items():
            out["short"][t] = min(n, out["short"].get(t, n))
    out["slow"] = sorted({t for p in plans for t in p.get("slow") or []})
    out["routes_source"] = " and ".join(sorted({str(p["routes_source"]) for p in plans if p.get("routes_source")})) or None
    return out


def peers_of(the_plan: dict, source: str) -> list[str]:
    """The targets one host probes, in name order."""
    return list((the_plan.get("pairs") or {}).get(source) or {})


def probed_pairs(the_plan: dict) -> int:
    return sum(len(p) for p in (the_plan.get("pairs") or {}).values())


def why(the_plan: dict | None, source: str, target: str) -> list[str] | None:
    """Why the plan has source probe target; None when it does not (or there is no plan)."""
    if not the_plan:
        return None
    return ((the_plan.get("pairs") or {}).get(source) or {}).get(target)


def not_planned(the_plan: dict | None, source: str, target: str) -> str:
    """Why source did not probe target, in the words of a finding."""
    if not the_plan:
        return f"{source} did not probe {target}"
    dropped = ((the_plan.get("dropped") or {}).get(source) or {}).get(target)
    if dropped is not None:
        return (f"{source} did not probe {target}: the route is past the probe plan's bound of "
                f"{the_plan['settings']['max_peers']} peers per host (mailflow_probe_max_peers)")
    if ((the_plan.get("unaddressed") or {}).get(source) or {}).get(target) is not None:
        return (f"{source} did not probe {target}: {target} is not in this job slice's inventory and "
                f"{the_plan.get('fleet_source') or 'the earlier audit'} gave no name or address to connect to")
    if why(the_plan, source, target) is not None:
        return f"{source} was to probe {target} but no probe came back"
    return (f"{source} did not probe {target}: not in this run's {the_plan.get('mode')} probe plan (the routes it "
            f"followed came from {the_plan.get('routes_source') or 'nowhere'}; the next audit follows this one's)")


def merge_routes(*sources: dict[str, dict[str, list[str]]] | None) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for routes in sources:
        for s, peers in (routes or {}).items():
            for t, reasons in (peers or {}).items():
                have = out.setdefault(str(s), {}).setdefault(str(t), [])
                have += [str(r) for r in reasons if str(r) not in have]
    return out


def routes_from_audit(doc: dict | None) -> dict[str, dict[str, list[str]]]:
    """The routes an earlier audit learned (its `routes`: {sender: {receiver: [why]}})."""
    routes = (doc or {}).get("routes") or {}
    if not isinstance(routes, dict):
        return {}
    return {str(s): {str(t): [str(w) for w in why] for t, why in (peers or {}).items()} for s, peers in routes.items()
            if isinstance(peers, dict)}


SLOW_RESULTS = ("filtered", "no_banner")  # the connect or the greeting waited out the probe's timeout


def slow_from_audit(doc: dict | None, slow_ms: int = 2000) -> list[str]:
    """The servers an earlier audit's probes waited on: a filtered port, a mute banner, or an answer after slow_ms."""
    return sorted({str(p.get("to")) for p in (doc or {}).get("peers") or []
                   if isinstance(p, dict) and (p.get("result") in SLOW_RESULTS or int(p.get("ms") or 0) >= slow_ms)})


def routes_from_inventory(hostvars: dict[str, dict], names: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """Routes the inventory declares: mailflow_sends_to (a list of inventory names) and an inventory host named
    by mailflow_smarthost_expected."""
    names = list(names)
    known = {n.lower(): n for n in names}
    for n in names:
        for alias in (hostvars.get(n) or {}).get("mailflow_fqdn"), (hostvars.get(n) or {}).get("ansible_host"):
            if alias:
                known.setdefault(str(alias).lower(), n)
    out: dict[str, dict[str, list[str]]] = {}
    for n in names:
        hv = hostvars.get(n) or {}
        for peer in hv.get("mailflow_sends_to") or []:
            t = known.get(str(peer).lower())
            if t and t != n:
                out.setdefault(n, {}).setdefault(t, []).append("inventory mailflow_sends_to")
        for entry in str(hv.get("mailflow_smarthost_expected") or "").split(";"):
            t = known.get(entry.strip().strip("[]").lower())
            if t and t != n:
                out.setdefault(n, {}).setdefault(t, []).append("inventory mailflow_smarthost_expected")
    return out
