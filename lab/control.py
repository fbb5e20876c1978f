"""The background lab: serve a scenario and answer a tiny control API on 127.0.0.1.

GET /status, POST /fault {host, ...}, POST /dump {path}, POST /shutdown {dump}.
"""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab.core import Lab
from lab.scenario import dump_state, load_scenario, load_state


def status(lab_: Lab) -> dict:
    return {
        "hosts": {h.name: {"address": h.address, "fqdn": h.fqdn, "ports": h.ports} for h in lab_.fleet.hosts.values()},
        "time_factor": lab_.fleet.time_factor,
        "devices": {d["name"]: {"kind": d["kind"], "address": d.get("address"), "ports": d.get("ports")}
                    for d in lab_.fleet.network.get("devices", [])},
        "counters": lab_.metrics.snapshot(),
        "device_counters": lab_.metrics.device_snapshot(),
        "faults": {name: f.to_plain() for name, f in lab_.metrics.faults.items()},
    }


def serve(scenario: str, state_dir: str, inventory_out: str | None, load: str | None, address_block: int | None = None,
          user_known_hosts: bool = True, time_factor: float | None = None) -> int:
    fleet = load_state(load) if load else load_scenario(scenario, address_block=address_block)
    lab_ = Lab(fleet, state_dir, user_known_hosts=user_known_hosts, time_factor=time_factor).start()
    if inventory_out:
        lab_.write_inventory(inventory_out)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep lab.log for the lab's own messages
            pass

        def _reply(self, body: dict, code: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/status":
                return self._reply(status(lab_))
            return self._reply({"error": "not found"}, 404)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/fault":
                fault = lab_.metrics.fault(body.pop("host"))
                for k, v in body.items():
                    setattr(fault, k, v)
                return self._reply(fault.to_plain())
            if self.path in ("/dump", "/shutdown"):
                path = body.get("path") or body.get("dump")
                if path:
                    with fleet.lock:
                        dump_state(fleet, path)
                if self.path == "/shutdown":
                    stop.set()
                return self._reply({"ok": True, "dumped": path})
            return self._reply({"error": "not found"}, 404)

    control = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    run = {"pid": os.getpid(), "control_port": control.server_address[1], "hosts": len(fleet.hosts), "scenario": scenario}
    with open(os.path.join(state_dir, "run.json"), "w", encoding="utf-8") as fh:
        json.dump(run, fh)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    control.shutdown()
    lab_.stop()
    os.remove(os.path.join(state_dir, "run.json"))
    return 0
