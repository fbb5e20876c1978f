"""Benchmark: parsing firewall configs for SMTP inspection, and deciding the cause over many firewalls.

    .venv/bin/python bench/ciscoconf_parse.py --interfaces 400 --rules 200 --firewalls 50 --servers 100

Generates an IOS running config of the size a busy branch router has (interfaces with addresses and ACLs,
CBAC rules, half of them applied), times ciscoconf.parse and ios_plan on it, then times the
cisco_smtp_inspection detector over a fleet of servers and that many copies of the firewall, every server
placed by subnet. Not a test: it asserts nothing about speed, only prints what it measured.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, ciscoconf, firewalls, knowledge  # noqa: E402
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import cisco_smtp_inspection  # noqa: E402


def ios_config(interfaces: int, rules: int) -> str:
    out = ["Building configuration...", "", "Current configuration : 0 bytes", "!", "version 12.4", "hostname RTR", "!"]
    for r in range(rules):
        out += [f"ip inspect name RULE{r} smtp alert on timeout 300", f"ip inspect name RULE{r} tcp"]
    out.append("!")
    for i in range(interfaces):
        out += [f"interface FastEthernet{i // 48}/{i % 48}", f" description segment {i}",
                f" ip address 10.{i // 250}.{i % 250}.1 255.255.255.0", f" ip access-group {100 + i % 99} in"]
        if i < rules and i % 2 == 0:
            out.append(f" ip inspect RULE{i} in")
        out += [" duplex auto", "!"]
    for a in range(interfaces):
        out.append(f"access-list {100 + a % 99} permit tcp any any eq smtp")
    return "\n".join(out + ["end", ""])


def timed(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interfaces", type=int, default=400)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--firewalls", type=int, default=50)
    ap.add_argument("--servers", type=int, default=100)
    args = ap.parse_args()

    text = ios_config(args.interfaces, args.rules)
    t_parse, cfg = timed(lambda: ciscoconf.parse(text))
    t_plan, plan = timed(lambda: ciscoconf.ios_plan(text))
    print(f"config: {len(text.splitlines())} lines, {len(text) // 1024} KiB; {len(cfg.interfaces)} interfaces, "
          f"{len(cfg.smtp_inspections())} SMTP inspections ({sum(i.applied for i in cfg.smtp_inspections())} applied)")
    print(f"parse: {t_parse * 1000:.1f} ms   ios_plan: {t_plan * 1000:.1f} ms ({len(plan.commands)} commands)")

    facts = [firewalls.facts_from_config(f"FW{n}", text, source="file") for n in range(args.firewalls)]
    hosts = [{"name": f"EXCH{s}", "managed": True, "fqdn": None, "address": f"10.{s // 250}.{s % 250}.25",
              "snapshot": {"schema": "mailflow.snapshot/1", "platform": {"computer_name": f"EXCH{s}"}, "probes": []},
              "error": None} for s in range(args.servers)]
    fleet = audit.fleet_from(hosts, knowledge.load({}), facts)
    t_detect, found = timed(lambda: cisco_smtp_inspection.detect(fleet), repeat=1)
    present = sum(f.status == "present" for f in found)
    print(f"detect over {args.servers} servers x {args.firewalls} firewalls: {t_detect:.2f} s ({present} present)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
