"""One host's snapshot: the collection plan, and the decoded, versioned result.

Collect once, decide later: everything the detectors need from a host is asked
for in one request (one WinRM command), and the result is plain JSON that can
be saved and audited offline. Nothing here decides a cause.
"""
from __future__ import annotations

import base64
import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult, REG_KIND_TO_TYPE

SCHEMA = "mailflow.snapshot/1"
MAX_PEERS = 2000  # a sanity bound on one request; fleets are far smaller


class PlanError(ValueError):
    pass


_SMTP_WORD = re.compile(r"[\x21-\x7e]{1,255}")


def _op_for(item_id: str, item: dict, since_iso: str) -> Op:
    op = item["op"]
    if op == "reg_read":
        return Op(op, (item["path"], str(item.get("depth", 0))))
    if op == "file_read":
        return Op(op, (item["path"], str(item.get("max_bytes", 1 << 20))))
    if op == "file_list":
        return Op(op, (item["path"], "1" if item.get("recurse") else "0", item.get("pattern", "*"), str(item.get("limit", 1000))))
    if op == "adsi_search":
        return Op(op, (item.get("base", ""), item["filter"], tuple(item.get("attrs", ()))))
    if op == "wmi_query":
        return Op(op, (item["namespace"], item["query"], tuple(item.get("props", ()))))
    if op == "eventlog":
        return Op(op, (item["log"], item.get("source", ""), tuple(str(i) for i in item.get("ids", ())), since_iso, str(item.get("max", 500))))
    if op == "service_query":
        return Op(op, (tuple(item["names"]),))
    if op == "msi_features":
        return Op(op, (item["product_like"],))
    if op == "tcp_connections":
        return Op(op, (str(item.get("remote_port", "")),))
    raise PlanError(f"knowledge collect.{item_id}: operation {op!r} cannot be used in a snapshot")


def probe_run_id() -> str:
    """A new probe sender's tag: 16 lower-case letters (no digits, '+' or '=' a greylister might fold away)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))


def build_plan(knowledge: dict, peers: list[dict], helo: str, domain: str, now: datetime | None = None,
               run_id: str | None = None) -> list[tuple[str, Op]]:
    """[(item id, Op)]: every knowledge item, then one SMTP probe per peer.

    peers: [{"name": inventory name, "target": fqdn or [ip]}]; helo: this host's FQDN. run_id fills {run} in the
    probe's sender (default: a new one, so no earlier probe's triplet can have been whitelisted by a greylister).
    """
    if len(peers) > MAX_PEERS:
        raise PlanError(f"{len(peers)} peers is more than one snapshot probes ({MAX_PEERS})")
    if peers and "{run}" not in str(knowledge["probe"].get("mail_from", "")):
        raise PlanError("knowledge probe.mail_from must contain {run}: with one sender for every audit, a greylisting "
                        "peer whitelists the probe's triplet and the next audit no longer sees greylisting")
    run = run_id or probe_run_id()
    now = now or datetime.now(timezone.utc)
    plan: list[tuple[str, Op]] = []
    for item_id, item in knowledge["collect"].items():
        days = int(item.get("days", 7))
        since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        plan.append((item_id, _op_for(item_id, item, since)))
    probe = knowledge["probe"]
    for peer in peers:
        target = str(peer.get("target") or peer["name"])
        peer_domain = target.split(".", 1)[1] if "." in target and not target.startswith("[") else domain
        words = {"EHLO name": helo, "MAIL FROM": probe["mail_from"].format(domain=domain, peer_domain=peer_domain, run=run),
                 "RCPT TO": probe["rcpt_to"].format(domain=domain, peer_domain=peer_domain, run=run), "target": target}
        for what, text in words.items():
            # Each goes on an SMTP command line (or names the peer): a space or control character would end it
            # and start another command, and a read-only audit must never carry one.
            if not _SMTP_WORD.fullmatch(text):
                raise PlanError(f"the probe of {peer['name']}: its {what} {text[:80]!r} is not one printable word "
                                "(check mailflow_fqdn, ansible_host and knowledge probe.mail_from/rcpt_to)")
        plan.append(("probe:" + peer["name"], Op("tcp_probe", (
            target, str(peer.get("port", probe["port"])), str(peer.get("timeout_ms", probe["timeout_ms"])), helo,
            words["MAIL FROM"], words["RCPT TO"],
        ))))
    return plan


# -- decoding results into the snapshot


def _reg_data(rtype: str, data: Any) -> Any:
    if rtype == "REG_DWORD" and isinstance(data, int):
        return data & 0xFFFFFFFF  # .NET hands DWORDs over as signed Int32
    if rtype == "REG_QWORD" and isinstance(data, int):
        return data & 0xFFFFFFFFFFFFFFFF
    if isinstance(data, bytes):
        return data.hex()
    return data


def _text(data: bytes) -> tuple[str | None, str]:
    """Decode a file as IIS would have written it; (text, encoding) or (None, 'binary')."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(enc, "replace"), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return None, "binary"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _decode_registry(res: OpResult) -> dict | None:
    if res.first("missing") is not None:
        return None
    keys: dict[str, dict] = {}
    for kind, row in res.rows:
        if kind == "key":
            keys.setdefault(row["path"], {"values": {}, "subkeys": []})
        elif kind == "value":
            rtype = REG_KIND_TO_TYPE.get(row["type"], row["type"])
            keys.setdefault(row["key"], {"values": {}, "subkeys": []})["values"][row["name"]] = {
                "type": rtype, "data": _reg_data(rtype, row["data"])}
        elif kind == "subkey":
            keys.setdefault(row["key"], {"values": {}, "subkeys": []})["subkeys"].append(row["name"])
    for path, entry in keys.items():  # subkeys walked into are subkeys too
        prefix = path.lower() + "\\"
        for other in keys:
            if other.lower().startswith(prefix) and "\\" not in other[len(prefix):]:
                entry["subkeys"].append(other[len(prefix):])
    return keys


def _decode(res: OpResult) -> Any:
    op = res.op.name
    if op == "reg_read":
        return _decode_registry(res)
    if op == "file_read":
        row = res.first("file")
        if row is None:
            return None
        text, enc = _text(row["data"])
        out = {"path": row["path"], "size": row["size"], "mtime": row["mtime"], "encoding": enc, "text": text}
        if text is None:
            out["base64"] = base64.b64encode(row["data"]).decode("ascii")
        return out
    if op == "file_list":
        if res.first("missing") is not None:
            return None
        trunc = res.first("truncated")
        return {"path": res.op.args[0], "files": res.of_kind("file"), "truncated_total": trunc["total"] if trunc else None}
    if op == "adsi_search":
        return [{"dn": r["dn"], "attrs": {k[2:]: v for k, v in r.items() if k.startswith("a:")}} for r in res.of_kind("entry")]
    if op == "wmi_query":
        return [{k: _jsonable(v) for k, v in r.items()} for r in res.of_kind("object")]
    if op == "eventlog":
        return {"events": res.of_kind("event"), "truncated": res.first("truncated") is not None}
    if op == "service_query":
        out = {r["name"]: {k: r[k] for k in ("display_name", "state", "start_mode")} for r in res.of_kind("service")}
        out.update({r["name"]: None for r in res.of_kind("missing")})
        return out
    if op == "msi_features":
        return res.of_kind("feature")
    if op == "tcp_connections":
        return res.of_kind("conn")
    return [dict(r, kind=k) for k, r in res.rows]


_SERIAL = re.compile(r"Version\s+(?P<ver>[\d.]+)\s+\(Build\s+(?P<build>[\d.]+)(?::\s*(?P<sp>[^)]*))?\)", re.I)


def platform_of(items: dict[str, Any], computer_name: str) -> dict:
    """What the host is, from raw data: Windows version, Exchange version and kind."""
    os_rows = items.get("os") or []
    os_info = os_rows[0] if os_rows else {}
    services = items.get("services") or {}
    exchange = None
    for entry in items.get("ad_exchange_servers") or []:
        if str((entry["attrs"].get("cn") or [""])[0]).lower() == computer_name.lower():
            serial = " ".join(entry["attrs"].get("serialNumber") or [])
            m = _SERIAL.search(serial)
            if m:
                exchange = {"version": m["ver"], "build": m["build"], "service_pack": (m["sp"] or "").strip() or None, "source": "ad:serialNumber"}
    setup = (items.get("exchange_setup") or {})
    setup_values = next(iter(setup.values()), {}).get("values", {}) if setup else {}
    if exchange is None and setup_values:
        build = (setup_values.get("ServicePackBuild") or {}).get("data")
        exchange = {"version": None, "build": str(build) if build is not None else None, "service_pack": None, "source": "registry:ServicePackBuild"}
    if services.get("MSExchangeIMC") and (exchange is None or str(exchange.get("version") or "").startswith("5.")):
        kind = "exchange55"
    elif exchange is not None:
        kind = {"6.5": "exchange2003", "6.0": "exchange2000"}.get(str(exchange.get("version")), "exchange")
    elif services.get("SMTPSVC"):
        kind = "smtp_relay"
    else:
        kind = "windows"
    return {
        "computer_name": computer_name,
        "os": {"caption": os_info.get("Caption"), "version": os_info.get("Version"), "build": os_info.get("BuildNumber"),
               "service_pack": os_info.get("CSDVersion"), "service_pack_major": os_info.get("ServicePackMajorVersion")},
        "exchange": exchange,
        "kind": kind,
    }


def assemble(host: str, computer_name: str, plan: list[tuple[str, Op]], results: list[OpResult],
             collected_at: str, duration_ms: int, transport: dict) -> dict:
    items: dict[str, Any] = {}
    errors: dict[str, str] = {}
    probes = []
    for (item_id, _), res in zip(plan, results):
        if res.error is not None:
            errors[item_id] = res.error
            continue
        if res.op.name == "tcp_probe":
            row = res.first("probe") or {}
            probes.append(dict(row, peer=item_id.split(":", 1)[1]))
        else:
            items[item_id] = _decode(res)
    return {
        "schema": SCHEMA,
        "host": host,
        "collected_at": collected_at,
        "duration_ms": duration_ms,
        "transport": transport,
        "platform": platform_of(items, computer_name),
        "items": items,
        "probes": probes,
        "errors": errors,
    }
