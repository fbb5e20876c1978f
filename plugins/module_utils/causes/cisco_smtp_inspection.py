"""KB 919091 cause 5: Cisco SMTP inspection (IOS CBAC `ip inspect name X smtp`, PIX Mailguard
`fixup protocol smtp 25`, ASA ESMTP inspection) between Exchange servers breaks ESMTP.

Two kinds of evidence, combined per receiving server:
- what the probes saw: a banner masked with asterisks except "2" and "0"
  (KB 295725: "220 *********0****...****2****"), or "500" to EHLO;
- what the firewalls' configs say (fleet.firewalls, read by audit.yml from the
  device or a saved config): an applied inspection that breaks ESMTP on this
  platform (knowledge detect.cisco_breaking_inspections) on the path from a
  peer to this server.

Both agreeing names the firewall, rule and interface with confidence
"confirmed". Either alone is "inferred": masking with no firewall to blame (a
device not in the inventory, or one whose position is unknown), or a config
that inspects SMTP on a path no probe crossed masked.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms

CAUSE = fd.Cause(
    id="cisco_smtp_inspection",
    title="Cisco SMTP inspection on the path breaks ESMTP",
    sources=("KB919091", "KB295725", "KB320027"),
    # The role runs on the IOS device (the firewalls group); PIX/ASA findings carry the lines to paste.
    severity="high",
    position=50,
    fix=fd.Fix(order=10, on="network"),
    kb919091_cause=5, symptom_scope="inbound",
)
_CLEAR = ("banner", "greylisted", "rejected")


def _names(entry) -> tuple:
    who = entry.identity
    return (entry.name, entry.fqdn, who["computer_name"], who["fqdn"])


def placements(fleet, breaking) -> dict[str, dict[str, str | None]]:
    """{firewall: {server: the interface it sits behind, or None}} for the firewalls that inspect SMTP."""
    return {fw.name: {e.name: fw.segment_of(_names(e), e.address) for e in fleet}
            for fw in fleet.firewalls if not fw.error and fw.breaking(breaking)}


def paths_into(fleet, entry, breaking, placed) -> tuple[dict[str, list], set[str]]:
    """({peer: [Crossing]} for every peer whose SMTP to entry meets an inspection of `breaking`'s protocols,
    names of firewalls with one whose position relative to entry or a peer is unknown). The servers' addresses
    go along: an inspection scoped by an access list only meets the connections the ACL permits."""
    crossings: dict[str, list] = {}
    unplaced: set[str] = set()
    for fw in fleet.firewalls:
        where = placed.get(fw.name)
        if where is None:
            continue
        dst_if = where[entry.name]
        for peer in fleet:
            if peer.name == entry.name:
                continue
            src_if = where[peer.name]
            if src_if is None or dst_if is None:
                unplaced.add(fw.name)
            elif src_if != dst_if:
                crossings.setdefault(peer.name, []).extend(fw.crossings(src_if, dst_if, breaking, peer.address, entry.address))
    return {p: c for p, c in crossings.items() if c}, unplaced


def stalled_senders(fleet, entry, senders) -> list[dict]:
    """The senders' own side of it: Event 4006 naming this server, their link to it in Retry (KB 919091's symptom;
    Mailguard times out when CRLF.CRLF is split across packets, KB 295725)."""
    out = []
    for name in senders:
        peer = fleet[name]
        if peer.snapshot is None or "items" not in peer.snapshot:
            continue
        events = symptoms.events_4006(fleet, peer)
        retry = symptoms.queue_retry(fleet, peer)
        n4006 = sum(r["count"] for r in events.get("per_remote") or [] if r["host"] == entry.name)
        links = [li for li in retry.get("links") or [] if li["host"] == entry.name]
        if n4006 or links:
            out.append({"from": name, "event_4006": n4006, "link_in_retry": bool(links),
                        "oldest": links[0]["oldest"] if links else None})
    return out


def _stalled_text(stalled, entry) -> str:
    parts = [f"{s['from']}'s mail to {entry.name} " + " and ".join(
        (["sits in Retry"] if s["link_in_retry"] else []) + ([f"drew Event 4006 x{s['event_4006']}"] if s["event_4006"] else []))
        for s in stalled]
    return f"; {'; '.join(parts)}" if parts else ""


def _describe(c) -> str:
    return _describe_dict(c.to_dict())


def _disputed(fleet, entry) -> list[dict]:
    """Inspections on the paths into entry that are not blamed but whose harmlessness to Exchange is disputed
    (knowledge detect.cisco_disputed_inspections: IOS `esmtp`), so the finding can say so."""
    disputed = fleet.setting("cisco_disputed_inspections")
    placed = {fw.name: {e.name: fw.segment_of(_names(e), e.address) for e in fleet}
              for fw in fleet.firewalls if not fw.error and disputed.get(fw.platform or "")}
    on_path, _unused = paths_into(fleet, entry, disputed, placed)
    return [{"from": peer, **c.to_dict()} for peer, cs in sorted(on_path.items()) for c in cs]


def _outside(on_path, peers) -> str | None:
    """Who must change the devices on these paths when none is an IOS CBAC rule the collection's own fix changes
    (PIX, ASA and FWSM are pasted by hand; a zone-based class usually matches more than SMTP)."""
    crossings = [c for peer in peers for c in on_path.get(peer, ())]
    if any(c.platform == "ios" and c.direction in ("in", "out") for c in crossings):
        return None
    return f"the network team: {_remedy(on_path, peers)}"


def detect(fleet):
    breaking = fleet.setting("cisco_breaking_inspections")
    placed = placements(fleet, breaking)
    read = [fw.name for fw in fleet.firewalls if not fw.error]
    unread = {fw.name: fw.error for fw in fleet.firewalls if fw.error}
    out = []
    for entry in fleet:
        probes = fleet.probes_to(entry.name)
        masked = [p for p in probes if p.result == "masked"]
        clear = [p for p in probes if p.result in _CLEAR]
        on_path, unplaced = paths_into(fleet, entry, breaking, placed)
        evidence = {"masked": [{"from": p.source, "banner": (p.raw.get("banner") or "").split("\n")[0],
                                "ehlo_reply": (p.raw.get("ehlo") or "").split("\n")[0]} for p in masked],
                    "clear_from": sorted(p.source for p in clear),
                    "firewalls_read": read}
        if unread:
            evidence["firewalls_unread"] = unread
        if on_path:
            evidence["crossings"] = [{"from": peer, **c.to_dict()} for peer, cs in sorted(on_path.items()) for c in cs]
        if unplaced:
            evidence["firewalls_unplaced"] = sorted(unplaced)
        disputed = _disputed(fleet, entry)
        if disputed:
            evidence["not_blamed_disputed"] = disputed
        dispute_note = (f"; not blamed: {', '.join(sorted({_describe_dict(d) for d in disputed}))} - IOS ESMTP inspection "
                        "understands EHLO, but that it passes Exchange's own verbs (XEXCH50, X-LINK2STATE) is not confirmed "
                        "by any source, and which release brought it is disputed (12.3(4)T / 12.3(7)T / 12.3(14)T)"
                        ) if disputed else ""
        masked_from = {p.source for p in masked}
        seen = sorted(masked_from & set(on_path))
        if seen:
            rules = sorted({_describe(c) for peer in seen for c in on_path[peer]})
            stalled = stalled_senders(fleet, entry, seen)
            if stalled:
                evidence["stalled_senders"] = stalled
            out.append(fd.Finding(
                CAUSE, entry.name, "present",
                f"SMTP from {', '.join(seen)} to {entry.name} arrives masked (banner / 500 to EHLO) and crosses "
                f"{'; '.join(rules)}{_stalled_text(stalled, entry)}: remove the SMTP inspection ({_remedy(on_path, seen)})"
                f"{dispute_note}",
                evidence, explains=sorted(masked_from | set(on_path)), confidence="confirmed",
                outside_help=_outside(on_path, seen)))
        elif on_path:
            peers = sorted(on_path)
            rules = sorted({_describe(c) for peer in peers for c in on_path[peer]})
            crossed_clear = sorted(set(peers) & set(evidence["clear_from"]))
            note = (f"; yet probes from {', '.join(crossed_clear)} saw a clear banner, so check the device's port map"
                    if crossed_clear else "; no probe crossed it masked")
            out.append(fd.Finding(
                CAUSE, entry.name, "present",
                f"SMTP from {', '.join(peers)} to {entry.name} crosses {'; '.join(rules)}{note}: remove the SMTP "
                f"inspection ({_remedy(on_path, peers)}){dispute_note}",
                evidence, explains=peers, confidence="inferred", outside_help=_outside(on_path, peers)))
        elif masked:
            who = ", ".join(sorted(masked_from))
            blame = (f"{', '.join(sorted(unplaced))} inspect(s) SMTP but where the servers sit behind it is unknown "
                     "(set mailflow_firewall_segments)" if unplaced
                     else "no firewall in the inventory explains it" if fleet.firewalls
                     else "no firewall config was read (add the device to the firewalls group)")
            out.append(fd.Finding(
                CAUSE, entry.name, "present",
                f"SMTP from {who} to {entry.name} passes an SMTP-inspecting firewall: masked banner / 500 to EHLO "
                f"(PIX Mailguard, IOS CBAC smtp or PIX/ASA/FWSM ESMTP inspection); {blame}{dispute_note}",
                evidence, explains=sorted(masked_from),
                # The masking pattern is KB 295725's; which device and rule does it is not seen from here.
                confidence="inferred"))
        elif clear:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"{len(clear)} peer(s) saw {entry.name}'s banner and EHLO unmasked{dispute_note}", evidence))
        else:
            out.append(fd.unknown(CAUSE, entry.name, "no peer completed an SMTP greeting with it", **evidence))
    return out


def _describe_dict(d: dict) -> str:
    where = ("globally" if d["interface"] == "*" else f"to zone pair {d['interface']}" if d["direction"] == "zone-pair"
             else f"{d['direction']} on {d['interface']}")
    scope = f" [{d['scope']}]" if d.get("scope") else ""
    return f"{d['firewall']} ({d['platform']}) `{d['line']}` applied {where}{scope}"


def _remedy(on_path, peers) -> str:
    """The lines to run, per firewall: an IOS one has a fix role; PIX/ASA lines are pasted by the network team."""
    by_fw: dict[str, list[str]] = {}
    for peer in peers:
        for c in on_path[peer]:
            lines = by_fw.setdefault(c.firewall, [])
            lines.extend(line.strip() for line in c.remediation if line.strip() not in lines)
    return "; ".join(f"{fw}: {' / '.join(lines)}" for fw, lines in sorted(by_fw.items()))
