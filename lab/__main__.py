"""python -m lab up|serve|status|down|fault|generate|demo|pin

`up` starts the lab in the background (all hosts in one process) and writes
an Ansible inventory; `status` and `down` talk to it over a small control
endpoint on 127.0.0.1; `demo` is what `make demo` runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

import yaml

import lab  # noqa: F401  (puts the checkout's collections/ on sys.path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SCENARIO = os.path.join(ROOT, "lab", "scenarios", "demo.yml")
DEFAULT_STATE_DIR = os.path.join(ROOT, ".lab")
RUN_FILE = "run.json"


def _scenario_path(name: str) -> str:
    if os.path.exists(name):
        return name
    candidate = os.path.join(ROOT, "lab", "scenarios", name + ("" if name.endswith(".yml") else ".yml"))
    if os.path.exists(candidate):
        return candidate
    sys.exit(f"lab: no scenario {name!r} (a path, or a name under lab/scenarios/)")


def _control(state_dir: str, path: str, body: dict | None = None) -> dict:
    with open(os.path.join(state_dir, RUN_FILE), encoding="utf-8") as fh:
        run = json.load(fh)
    req = urllib.request.Request(f"http://127.0.0.1:{run['control_port']}{path}",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def cmd_serve(args) -> int:
    from lab.control import serve
    return serve(_scenario_path(args.scenario), args.state_dir, args.inventory_out, args.load, args.address_block,
                 user_known_hosts=not args.no_known_hosts, time_factor=args.time_factor)


def cmd_up(args) -> int:
    os.makedirs(args.state_dir, exist_ok=True)
    run_file = os.path.join(args.state_dir, RUN_FILE)
    if os.path.exists(run_file):
        os.remove(run_file)
    log = open(os.path.join(args.state_dir, "lab.log"), "ab")
    cmd = [sys.executable, "-m", "lab", "serve", args.scenario, "--state-dir", args.state_dir]
    if args.inventory_out:
        cmd += ["--inventory-out", os.path.abspath(args.inventory_out)]
    if args.load:
        cmd += ["--load", args.load]
    if args.address_block is not None:
        cmd += ["--address-block", str(args.address_block)]
    if args.no_known_hosts:
        cmd += ["--no-known-hosts"]
    if args.time_factor is not None:
        cmd += ["--time-factor", str(args.time_factor)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(run_file):
            with open(run_file, encoding="utf-8") as fh:
                run = json.load(fh)
            print(f"lab up: {run['hosts']} hosts (pid {proc.pid}); inventory {args.inventory_out or '(none)'}")
            return 0
        if proc.poll() is not None:
            sys.stderr.write(open(os.path.join(args.state_dir, "lab.log"), encoding="utf-8", errors="replace").read()[-4000:])
            return 1
        time.sleep(0.1)
    proc.terminate()
    sys.exit("lab up: the lab did not come up within 60 s")


def cmd_status(args) -> int:
    print(json.dumps(_control(args.state_dir, "/status"), indent=1, sort_keys=True))
    return 0


def cmd_down(args) -> int:
    try:
        _control(args.state_dir, "/shutdown", {"dump": args.dump})
    except (OSError, FileNotFoundError) as exc:
        print(f"lab down: not running ({exc})")
        return 0
    # The lab removes its run file once every listener is closed; wait for that,
    # so a following `up` finds the addresses free.
    run_file = os.path.join(args.state_dir, RUN_FILE)
    deadline = time.monotonic() + 30
    while os.path.exists(run_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("lab down" + (f": state dumped to {args.dump}" if args.dump else ""))
    return 0


def cmd_fault(args) -> int:
    fault = {k: v for k, v in vars(args).items() if k in ("latency_ms", "http_500", "drop_connections", "timeout") and v is not None}
    print(json.dumps(_control(args.state_dir, "/fault", {"host": args.host, **fault})))
    return 0


def cmd_generate(args) -> int:
    from lab.generator import generate
    data = generate(hosts=args.hosts, seed=args.seed, sites=args.sites)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    yaml.safe_dump(data, out, sort_keys=False)
    return 0


def cmd_pin(_args) -> int:
    """Print the hashes lab/shell/powershell.py must pin after a reviewed change."""
    from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner
    from lab.shell.powershell import as_received, sha256
    # The dispatcher as the bootstrap rebuilds it from $input's lines (LF-joined), which is what the lab hashes.
    print(json.dumps({"bootstrap": sha256(psrunner.bootstrap_script()),
                      "dispatcher": sha256(as_received(psrunner.dispatcher_script()))}, indent=1))
    return 0


def cmd_demo(args) -> int:
    from lab.demo import run_demo
    return run_demo(_scenario_path(args.scenario), args.state_dir, user_known_hosts=not args.no_known_hosts)


def _time_factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--time-factor: want a number above 0, got {text!r}")
    return value


def _known_hosts_flag(parser: argparse.ArgumentParser) -> None:
    # On by default here: `up` and `demo` start labs for Ansible to drive, and its libssh reads no other file.
    parser.add_argument("--no-known-hosts", action="store_true",
                        help="do not list the devices' SSH host keys in ~/.ssh/known_hosts while the lab runs "
                             "(tagged lines, removed as it stops; without them Ansible's libssh cannot check the "
                             "keys and network_cli fails)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="where the running lab keeps its CA, log and run file")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, fn in (("up", cmd_up), ("serve", cmd_serve)):
        p = sub.add_parser(name, help="start the lab" + (" in the background" if name == "up" else " in the foreground"))
        p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO)
        p.add_argument("--inventory-out", help="write an Ansible inventory for the lab here")
        p.add_argument("--load", help="start from a state dump instead of the scenario's initial state")
        p.add_argument("--address-block", type=int, help="move the hosts to 127.N.y.z (several labs of one scenario at once)")
        p.add_argument("--time-factor", type=_time_factor,
                       help="run the SMTP services' retry schedules N times faster than real time "
                            "(default: the scenario's time_factor, else 1; lab/README.md)")
        _known_hosts_flag(p)
        p.add_argument("--state-dir", default=argparse.SUPPRESS)
        p.set_defaults(fn=fn)
    sub.add_parser("status", help="hosts and counters of the running lab").set_defaults(fn=cmd_status)
    p = sub.add_parser("down", help="stop the running lab")
    p.add_argument("--dump", help="write the lab's state to this file first")
    p.set_defaults(fn=cmd_down)
    p = sub.add_parser("fault", help="inject faults into one host's WinRM")
    p.add_argument("host")
    p.add_argument("--latency-ms", type=int)
    p.add_argument("--http-500", type=int)
    p.add_argument("--drop-connections", type=int)
    p.add_argument("--timeout", type=lambda s: s.lower() in ("1", "true", "yes"))
    p.set_defaults(fn=cmd_fault)
    p = sub.add_parser("generate", help="write a scenario of N hosts")
    p.add_argument("--hosts", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sites", type=int, default=1, help="routing groups, with bridgeheads, connectors and a relay each")
    p.add_argument("--out")
    p.set_defaults(fn=cmd_generate)
    sub.add_parser("pin", help="print the PowerShell hashes the emulation pins").set_defaults(fn=cmd_pin)
    p = sub.add_parser("demo", help="what `make demo` runs")
    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO)
    _known_hosts_flag(p)
    p.set_defaults(fn=cmd_demo)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
