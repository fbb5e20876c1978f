"""Is a changed cause gone? The detectors decide it, on evidence taken after the change only.

A cause that concerns a host's inbound mail (its banner, its port 25, its SMTP
service, the firewalls in front of it) is decided from its peers' probes of
it. The pre-flight audit's probes are from before the change, so a post-change
verdict built on them can never see a fix work: every pair that involves the
changed host is probed again, from the peers that probe it, one probe-only
command each (snapshot probe_only), and those fresh probes replace the old ones.

"Verified" means one thing: the cause's detector says absent on that fresh
evidence. Present because of something no fix on the hosts can change (its
finding's outside_help: a network firewall) is the change's part done, and
says whom to ask. Unknown (no fresh evidence came) is not verified.
"""
from __future__ import annotations

from typing import Any


def fresh_probes_of(host: str, results: list[Any]) -> dict[str, list[dict] | str]:
    """{peer: its fresh probes of `host`, or why there are none} from the probe-only snapshot tasks delegated to each
    peer (their registered loop results: item = the peer, snapshot.probes, or failed/unreachable with msg)."""
    out: dict[str, list[dict] | str] = {}
    for r in results or []:
        if not isinstance(r, dict) or r.get("skipped"):
            continue
        peer = r.get(r.get("ansible_loop_var") or "item")
        if not isinstance(peer, str):
            continue
        if r.get("failed") or r.get("unreachable") or not isinstance(r.get("snapshot"), dict):
            out[peer] = str(r.get("msg") or "the probe command failed")
            continue
        out[peer] = [p for p in r["snapshot"].get("probes") or [] if p.get("peer") == host]
    return out


def replace_probes_of(host: str, entries: list[dict], fresh: dict[str, list[dict] | str]) -> None:
    """In each peer's (pre-flight) snapshot, its probes of `host` become the fresh ones (none, where it could not
    probe again): no verdict about `host` rests on evidence from before the change."""
    for e in entries:
        snap = e.get("snapshot")
        if e["name"] == host or not snap:
            continue
        kept = [p for p in snap.get("probes") or [] if p.get("peer") != host]
        again = fresh.get(e["name"])
        e["snapshot"] = dict(snap, probes=kept + (again if isinstance(again, list) else []))


def judge(host: str, findings: list, causes: list[str], fresh: dict[str, list[dict] | str]) -> dict[str, Any]:
    """The verdict on the changed causes: {status, still_present, outside_help, unverified, fresh_from,
    fresh_failed, ok, msg}."""
    mine = {f.cause.id: f for f in findings if f.cause.id in causes}
    still = {c: f.summary for c, f in mine.items() if f.status == "present" and not f.outside_help}
    outside = {c: f.outside_help for c, f in mine.items() if f.status == "present" and f.outside_help}
    unverified = {c: f.reason or f.summary for c, f in mine.items() if f.status == "unknown"}
    problems = [f"still present on fresh evidence: {c} ({why})" for c, why in sorted(still.items())]
    problems += [f"not verified: {c} ({why})" for c, why in sorted(unverified.items())]
    return {
        "status": {c: f.status for c, f in mine.items()},
        "still_present": sorted(still),
        "outside_help": outside,
        "unverified": unverified,
        "fresh_from": sorted(p for p, v in fresh.items() if isinstance(v, list)),
        "fresh_failed": {p: v for p, v in sorted(fresh.items()) if not isinstance(v, list)},
        "ok": not problems,
        "msg": f"{host}: " + "; ".join(problems) if problems else f"{host}: {', '.join(sorted(mine)) or 'nothing'} verified",
    }
