"""KB 919091 cause 5: Cisco SMTP inspection (IOS CBAC `ip inspect name X smtp`, PIX Mailguard
`fixup protocol smtp 25`, ASA ESMTP inspection) between Exchange servers breaks ESMTP.

This detector reads what the probes saw: a banner masked with asterisks except
"2" and "0" (KB 295725: "220 *********0****...****2****"), or "500" to EHLO
("ehlo -> 500 Unrecognized command"). The finding is attached to the server
whose inbound SMTP arrives masked; firewall configurations (which device,
which rule) extend it in a later issue.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd

CAUSE = fd.Cause(
    id="cisco_smtp_inspection",
    title="Cisco SMTP inspection on the path breaks ESMTP",
    sources=("KB919091", "KB295725", "KB320027"),
    severity="high", fix=None, kb919091_cause=5, symptom_scope="inbound",
)
_CLEAR = ("banner", "greylisted", "rejected")


def detect(fleet):
    out = []
    for entry in fleet:
        probes = fleet.probes_to(entry.name)
        masked = [p for p in probes if p.result == "masked"]
        clear = [p for p in probes if p.result in _CLEAR]
        evidence = {"masked": [{"from": p.source, "banner": (p.raw.get("banner") or "").split("\n")[0],
                                "ehlo_reply": (p.raw.get("ehlo") or "").split("\n")[0]} for p in masked],
                    "clear_from": sorted(p.source for p in clear)}
        if masked:
            who = ", ".join(sorted(p.source for p in masked))
            out.append(fd.Finding(
                CAUSE, entry.name, "present",
                f"SMTP from {who} to {entry.name} passes an SMTP-inspecting firewall: masked banner / 500 to EHLO "
                "(PIX Mailguard, IOS CBAC smtp or ASA ESMTP inspection); disable the inspection on that path",
                evidence, explains=[p.source for p in masked],
                # The masking pattern is KB 295725's; which device and rule does it is not seen from here.
                confidence="inferred"))
        elif clear:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"{len(clear)} peer(s) saw {entry.name}'s banner and EHLO unmasked", evidence))
        else:
            out.append(fd.unknown(CAUSE, entry.name, "no peer completed an SMTP greeting with it", **evidence))
    return out
