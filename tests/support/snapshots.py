"""Snapshots of a running lab taken in-process: the collection's own plan and decoder,
the lab's own PowerShell emulation and SMTP probes, without the WinRM hop.

Unit tests of detectors use these real snapshots (and edited copies of them),
so a detector is tested against what the runner really returns.
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, psrunner, snapshot


def take(lab, host: str, knowledge_overrides: dict | None = None, peers: list[str] | None = None,
         org_reads: bool = True) -> dict:
    facts = knowledge.load(knowledge_overrides)
    h = lab.fleet.hosts[host]
    names = peers if peers is not None else [n for n in lab.fleet.hosts if n != host]
    plan = snapshot.build_plan(facts, [{"name": n, "target": lab.fleet.hosts[n].fqdn} for n in names if n != host],
                               helo=h.fqdn, domain=h.fqdn.split(".", 1)[1], org_reads=org_reads)
    ops = [op for _, op in plan]

    def execute(cmd, stdin):
        out, err, rc = lab.execute(host, cmd, stdin)
        return {"stdout": out.decode("utf-8"), "stderr": err.decode("utf-8", "replace"), "rc": rc}
    results = psrunner.run(execute, ops)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return snapshot.assemble(host, plan, results, collected_at=now, duration_ms=0,
                             transport={"command_line_length": 0, "stdin_bytes": 0, "operations": len(ops)})


# Probes toward filtered peers wait out their timeout; tests do not need 5 s of patience.
FAST_PROBES = {"probe": {"timeout_ms": 1500}}


def take_fleet(lab, knowledge_overrides: dict | None = None) -> dict[str, dict | None]:
    """{name: snapshot} for every WinRM host (taken concurrently, as forks would), None for the unmanaged ones."""
    overrides = knowledge.merge(FAST_PROBES, knowledge_overrides or {})
    managed = [n for n, h in lab.fleet.hosts.items() if h.winrm]
    with ThreadPoolExecutor(max_workers=len(managed) or 1) as pool:
        taken = dict(zip(managed, pool.map(lambda n: take(lab, n, overrides), managed)))
    return {n: taken.get(n) for n in lab.fleet.hosts}


def hosts_for(lab, snaps: dict[str, dict | None], declared: dict[str, dict] | None = None) -> list[dict]:
    """The audit's host list for these snapshots, as the audit action builds it from the inventory."""
    out = []
    for n, h in lab.fleet.hosts.items():
        out.append({"name": n, "managed": h.winrm, "fqdn": h.fqdn, "address": h.address,
                    "snapshot": copy.deepcopy(snaps.get(n)), "error": None if snaps.get(n) else ("unmanaged" if not h.winrm else "unreachable"),
                    "declared": (declared or {}).get(n, {})})
    return out


def fleet(lab, snaps: dict[str, dict | None], knowledge_overrides: dict | None = None, declared: dict | None = None):
    return audit.fleet_from(hosts_for(lab, snaps, declared), knowledge.load(knowledge_overrides))
