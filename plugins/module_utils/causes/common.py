"""What every detector does the same way: one finding per inventory host, unknown when data is missing."""
from __future__ import annotations

from typing import Callable, Iterable

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import Fleet, HostEntry, greylist_reply
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView, Missing
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
            kind, _ = fleet.kind_of(entry.name)
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
