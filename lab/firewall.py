"""Windows Firewall (Server 2003 SP1+) as Windows keeps it: in the registry.

The lab has no firewall switch of its own. The SMTP listener reads the same
FirewallPolicy values a snapshot reads, so what the lab does and what a
detector sees can never disagree, and a fix that opens the port through the
registry takes effect. Open ports live under GloballyOpenPorts\\List as
"25:TCP" = "25:TCP:*:Enabled:SMTP" (port:protocol:scope:status:name), the form
the XP SP2 / 2003 SP1 firewall uses; marked "inferred" in knowledge.yml.
"""
from __future__ import annotations

from lab.state import Registry

POLICY = r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile"
OPEN_PORTS = POLICY + r"\GloballyOpenPorts\List"


def _entry(rule: dict) -> tuple[str, str]:
    port, proto = int(rule["port"]), str(rule.get("protocol", "TCP")).upper()
    status = "Enabled" if rule.get("enabled", True) else "Disabled"
    return f"{port}:{proto}", f"{port}:{proto}:{rule.get('scope', '*')}:{status}:{rule.get('name', '')}"


def to_registry(spec: dict | None) -> dict[str, dict]:
    """Plain registry entries for a scenario's `firewall:` block."""
    if not spec:
        return {}
    out = {POLICY: {"EnableFirewall": {"type": "REG_DWORD", "data": 1 if spec.get("enabled") else 0}}}
    ports = dict(_entry(rule) for rule in spec.get("open_ports") or [])
    out[OPEN_PORTS] = {name: {"type": "REG_SZ", "data": data} for name, data in ports.items()}
    return out


def set_firewall(registry: Registry, enabled: bool, open_ports: list[dict] | None = None) -> None:
    registry.delete_key(POLICY)
    for key, values in to_registry({"enabled": enabled, "open_ports": open_ports or []}).items():
        registry.create_key(key)
        for name, val in values.items():
            registry.set(key, name, val["type"], val["data"])


def enabled(registry: Registry) -> bool:
    val = registry.get(POLICY, "EnableFirewall")
    return bool(val and int(val.data))


def open_ports(registry: Registry) -> list[dict]:
    rules = []
    for _, val in registry.values(OPEN_PORTS) or []:
        parts = str(val.data).split(":", 4)
        if len(parts) == 5 and parts[0].isdigit():
            rules.append({"port": int(parts[0]), "protocol": parts[1].upper(), "scope": parts[2],
                          "enabled": parts[3].lower() == "enabled", "name": parts[4]})
    return rules


def allows(registry: Registry, port: int, protocol: str = "TCP") -> bool:
    if not enabled(registry):
        return True
    return any(r["port"] == port and r["protocol"] == protocol and r["enabled"] for r in open_ports(registry))
