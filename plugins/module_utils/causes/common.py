"""What every detector does the same way: one finding per inventory host, unknown when data is missing."""
from __future__ import annotations

from typing import Callable, Iterable

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import probe_plan, symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import Fleet, HostEntry, greylist_reply
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView, Missing, connector_of
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError

EXCHANGE_SMTP_KINDS = ("exchange2003", "exchange2000")


def per_host(fleet: Fleet, cause: fd.Cause, decide: Callable[[HostEntry, HostView], fd.Finding],
             kinds: Iterable[str] | None = None) -> list[fd.Finding]:
    """Run `decide` for each host that has a snapshot and is of one of `kinds`.

    Hosts without a snapshot are `unknown` (with the reason they have none);
    hosts of another kind are `not_applicable`; a read the snapshot cannot
    answer turns into `unknown` with that reason.
    """
    kinds = tuple(kinds) if kinds is not None else None
    out = []
    for entry in fleet:
        view = entry.view
        if view is None:
            kind, _unused = fleet.kind_of(entry.name)
            if kinds is not None and kind is not None and kind not in kinds:
                out.append(fd.not_applicable(cause, entry.name, f"{entry.name} is {kind}; this cause concerns {', '.join(kinds)}"))
            else:
                out.append(fd.unknown(cause, entry.name, no_snapshot_reason(entry)))
            continue
        if kinds is not None and view.kind == "exchange" and any(k.startswith("exchange") for k in kinds):
            # Exchange of a version the snapshot could not tell: the cause may well apply.
            out.append(fd.unknown(cause, entry.name, unknown_version(entry, view)))
            continue
        if kinds is not None and view.kind not in kinds:
            out.append(fd.not_applicable(cause, entry.name, f"{entry.name} is {view.kind}; this cause concerns {', '.join(kinds)}"))
            continue
        try:
            out.append(decide(entry, view))
        except Missing as exc:
            out.append(fd.unknown(cause, entry.name, str(exc)))
        except MetabaseError as exc:
            out.append(fd.unknown(cause, entry.name, f"the metabase cannot be read ({exc})"))
    return out


def unknown_version(entry: HostEntry, view: HostView) -> str:
    """Why a host is Exchange of an unknown version, with what to do when the snapshot knows (e.g. AD refused)."""
    note = view.platform.get("kind_note")
    return f"{entry.name} runs Exchange of an unknown version" + (f": {note}" if note else "")


def no_snapshot_reason(entry: HostEntry) -> str:
    if not entry.managed:
        return f"{entry.name} is not managed (mailflow_unmanaged): no snapshot of its own"
    return f"no snapshot of {entry.name}: {entry.error or 'not collected'}"


def names_match(text: str, candidates: Iterable[str]) -> bool:
    t = (text or "").lower()
    return any(t.startswith(c.lower()) for c in candidates)


def sends_to(fleet: Fleet, entry: HostEntry) -> dict[str, list[str]]:
    """{peer: [why]}: the inventory hosts this host has mail for, from its queues (links) and 4006 events."""
    out: dict[str, list[str]] = {}
    if entry.snapshot is None:
        return out
    view = entry.view
    for link in view.items.get("smtp_links") or []:
        peer = fleet.resolve(link.get("LinkName"))
        if peer:
            out.setdefault(peer, []).append(f"queue {link.get('LinkName')}")
    ev = symptoms.events_4006(fleet, entry)
    for r in ev.get("per_remote") or []:
        if r.get("host"):
            out.setdefault(r["host"], []).append(f"{r['count']} x Event 4006")
    return out


def smart_hosts(fleet: Fleet, entry: HostEntry) -> list[str]:
    """The inventory hosts this host's SMTP virtual servers name as their smart host (AD, else the metabase)."""
    view = entry.view
    if view is None:
        return []
    values = []
    try:
        if view.kind.startswith("exchange"):
            values += [v for _dn, attrs in view.ad_virtual_servers(entry.computer_name).values()
                       for v in (attrs.get("msExchSmtpSmartHost") or [])]
    except Missing:
        pass
    try:
        values += [vs.get("SmartHost") or "" for vs in view.metabase().smtp_virtual_servers().values()]
    except (Missing, MetabaseError):
        pass
    found = (fleet.resolve(e.strip().strip("[]")) for v in values for e in str(v).split(";") if e.strip())
    return sorted({p for p in found if p and p != entry.name})


def routes(fleet: Fleet) -> dict[str, dict[str, list[str]]]:
    """{sender: {receiver: [why]}}: where each server's mail goes, from its own snapshot (queues and links,
    Event 4006, its smart host). The audit records it (audit.json `routes`) for the next run's probe plan."""
    def compute():
        out: dict[str, dict[str, list[str]]] = {}
        for entry in fleet:
            mine = sends_to(fleet, entry)
            for peer in smart_hosts(fleet, entry):
                mine.setdefault(peer, []).append("smart host")
            for peer, why in (connector_routes(fleet).get(entry.name) or {}).items():
                mine.setdefault(peer, []).extend(why)
            mine.pop(entry.name, None)
            if mine:
                out[entry.name] = {t: sorted(set(why)) for t, why in sorted(mine.items())}
        return out
    return fleet.derived("routes", "*", compute)


def connector_routes(fleet: Fleet) -> dict[str, dict[str, list[str]]]:
    """{bridgehead: {remote bridgehead: ["routing group connector <name>"]}}: mail between routing groups goes
    from a connector's local bridgeheads to its remote ones. A few hosts of each run read the organisation's
    connectors from AD (scope org); the union of what they read counts (their DCs may lag), each distinct entry
    decoded once."""
    def compute():
        seen: set = set()
        out: dict[str, dict[str, list[str]]] = {}
        for entry in fleet:
            for raw in ((entry.snapshot or {}).get("items") or {}).get("ad_routing_group_connectors") or []:
                key = (raw.get("dn"), tuple((k, tuple(v or ())) for k, v in sorted((raw.get("attrs") or {}).items())))
                if key in seen:
                    continue
                seen.add(key)
                conn = connector_of(raw)
                why = f"routing group connector {conn['name']}"
                pairs = [(src, dst) for src in filter(None, map(fleet.resolve, conn["source"]))
                         for dst in filter(None, map(fleet.resolve, conn["target"])) if src != dst]
                for src, dst in pairs:
                    have = out.setdefault(src, {}).setdefault(dst, [])
                    if why not in have:
                        have.append(why)
        return out
    return fleet.derived("connector_routes", "*", compute)


def unprobed_senders(fleet: Fleet, entry: HostEntry) -> list[str]:
    """Why each server that sends mail to this host (routes) has no probe of it this run: the pairs an inbound
    verdict of `absent` would need. Empty when every sender probed it."""
    def compute():
        return [probe_plan.not_planned(fleet.probe_plan, sender, entry.name)
                for sender, peers in routes(fleet).items()
                if entry.name in peers and not fleet.probed(sender, entry.name)]
    return fleet.derived("unprobed_senders", entry.name, compute)


def path_absent(fleet: Fleet, entry: HostEntry, cause: fd.Cause, summary: str, evidence: dict, **kw) -> fd.Finding:
    """`absent` for an inbound cause decided on the paths that were probed; `unknown` when a server that sends
    this host mail did not probe it, since the path the mail takes is the one that was not looked at."""
    missing = unprobed_senders(fleet, entry)
    if missing:
        return fd.unknown(cause, entry.name, f"{summary}, but " + "; ".join(missing[:5])
                          + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""), **evidence)
    return fd.Finding(cause, entry.name, "absent", summary, evidence, **kw)


def greylisting_peers(fleet: Fleet) -> dict[str, list[str]]:
    """{peer: [evidence]}: hosts that answered a probe's MAIL/RCPT with a temporary 4xx, or that the inventory says greylist."""
    out: dict[str, list[str]] = {}
    for p in fleet.probes:
        if p.result == "greylisted":
            out.setdefault(p.target, []).append(f"{p.source} probe: {greylist_reply(p.raw, fleet.greylist_codes).splitlines()[0][:80]}")
    for e in fleet:
        if e.declared.get("greylists"):
            out.setdefault(e.name, []).append("inventory: mailflow_greylists")
    return out


def stuck_on(fleet: Fleet, entry: HostEntry) -> list[str]:
    """Inventory hosts this host's own mail is stuck on (Event 4006 and retry queues)."""
    return sorted({h for s in (symptoms.events_4006(fleet, entry), symptoms.queue_retry(fleet, entry)) for h in s["remote_hosts"]})
