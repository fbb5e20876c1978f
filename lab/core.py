"""The running lab: one process, every host's WinRM and SMTP listeners, every IOS device's SSH.

Protocol handling (lab.wsman, lab.smtp, lab.netdev) stays apart from host
state (lab.state) the way moto separates responses from backends; this
module only wires them together and answers the few questions that need both
(run a command, probe peers, control a service).
"""
from __future__ import annotations

import os
from typing import Any

import yaml

from lab import shell
from lab.ca import LabCA
from lab.netdev import keys
from lab.netdev.sshd import SshListener
from lab.network import serves_ssh
from lab.runtime import Metrics
from lab.services import ServiceError, ServiceManager
from lab.smtp.blackhole import Blackhole
from lab.smtp.delivery import DeliveryEngine
from lab.smtp.probe import probe_many
from lab.smtp.schedule import LabClock
from lab.smtp.server import SmtpListener
from lab.state import FleetState, HostState
from lab.wsman.server import WinRMListener
from lab.wsman.shells import Logon

# Where the simulated network sends SYNs it drops (a listener whose accept
# queue is kept full, so connects really time out).
BLACKHOLE_ADDRESS = "127.255.255.254"

# Win32_Service.StartService/StopService return values (MSDN Win32_Service).
_WMI_SERVICE_CODES = {1058: 14, 1060: 5, 1051: 3, 1056: 10, 1061: 5}


class Lab:
    def __init__(self, fleet: FleetState, workdir: str, user_known_hosts: str | bool = False,
                 time_factor: float | None = None, mail_flow: bool = True) -> None:
        """user_known_hosts: where else the lab lists its devices' SSH host keys while it runs, for Ansible's
        libssh (lab.netdev.keys says why): False (the default) nowhere but <workdir>/ssh/known_hosts, True the
        running user's ~/.ssh/known_hosts, a path that file. Opt-in, since it edits a file of the user's:
        `python -m lab up`/`demo` and the test fixtures whose labs Ansible drives turn it on.
        time_factor: how much faster than real time mail delivery retries (default: the scenario's, else 1).
        mail_flow: False keeps every queue where it is (no delivery engine), for tests that compare the fleet's
        state before and after something that must not change it."""
        self.mail_flow = mail_flow
        if time_factor is not None:
            fleet.time_factor = float(time_factor)
        self.clock = LabClock(fleet.time_factor)
        self.fleet = fleet
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.metrics = Metrics()
        self.ca = LabCA(os.path.join(workdir, "ca"))
        self.services = ServiceManager(fleet, self.metrics, on_change=self._on_service_change)
        self.winrm: list[WinRMListener] = []
        self.smtp: dict[str, SmtpListener] = {}
        self.ssh: dict[str, SshListener] = {}
        self.blackhole: Blackhole | None = None
        self.delivery: DeliveryEngine | None = None
        self.ssh_dir = os.path.abspath(os.path.join(workdir, "ssh"))
        self.known_hosts_path = os.path.join(self.ssh_dir, "known_hosts")
        self.ssh_config_path = os.path.join(self.ssh_dir, "ssh_config")
        self.firewall_config_dir = os.path.abspath(os.path.join(workdir, "firewall-configs"))
        self.user_known_hosts: str | None = (
            keys.user_known_hosts() if user_known_hosts is True else user_known_hosts or None)

    # -- lifecycle
    def start(self) -> "Lab":
        try:
            self._start_listeners()
            self._start_devices()
            if self.mail_flow:  # last: its first attempts go to listeners that are up
                # Assigned before it starts: a listener asks self.delivery whether a session is the engine's own,
                # and the first attempt can reach a listener before start() returns.
                self.delivery = DeliveryEngine(self.fleet, self.metrics, self.services.start_count, self.blackhole,
                                               self.clock)
                self.delivery.start()
        except BaseException:  # e.g. keys.KnownHostsConflict, a port in use: close what is listening already
            self.stop()
            raise
        return self

    def _start_listeners(self) -> None:
        self.blackhole = Blackhole(BLACKHOLE_ADDRESS, 0)  # any free port: several labs may run at once
        self.blackhole.start()
        for host in self.fleet.hosts.values():
            listener = SmtpListener(self.fleet, self.metrics, host.name, delivery=self)
            listener.start()
            self.smtp[host.name] = listener
            if not host.winrm:
                continue
            for scheme in ("http", "https"):
                ctx = self.ca.server_context(host) if scheme == "https" else None
                w = WinRMListener(self.fleet, self.metrics, host.name, self.execute, scheme=scheme, ssl_context=ctx)
                w.start()
                self.winrm.append(w)

    def _start_devices(self) -> None:
        """Every device's running config as a saved file; an SSH CLI for each IOS device with an address."""
        os.makedirs(self.firewall_config_dir, exist_ok=True)
        known = []
        for device in self.fleet.network.get("devices", []):
            with open(os.path.join(self.firewall_config_dir, device["name"] + ".cfg"), "w", encoding="utf-8") as fh:
                fh.write(device["config"])
            if not serves_ssh(device):
                continue
            key = keys.host_key(os.path.join(self.ssh_dir, device["name"] + ".key"))
            listener = SshListener(self.fleet, self.metrics, device["name"], key).start()
            self.ssh[device["name"]] = listener
            known.append(keys.known_hosts_line(*listener.endpoint, key))
        self.known_hosts_path, self.ssh_config_path = keys.write_client_files(self.ssh_dir, known)
        if known and self.user_known_hosts:
            keys.trust(self.user_known_hosts, known, keys.lab_tag(self.workdir))

    def stop(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()  # first: its sessions end before the listeners they talk to
            self.delivery = None
        for w in self.winrm:
            w.stop()
        for s in self.smtp.values():
            s.stop()
        for d in self.ssh.values():
            d.stop()
        if self.ssh and self.user_known_hosts:
            keys.untrust(self.user_known_hosts, keys.lab_tag(self.workdir))
        if self.blackhole:
            self.blackhole.stop()
        self.winrm, self.smtp, self.ssh = [], {}, {}

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what hosts do
    def execute(self, host_name: str, command_line: str, stdin: bytes, logon: Logon | None = None) -> tuple[bytes, bytes, int]:
        """Run a command line as WinRS would; logon: how its shell's user logged on (default a local logon)."""
        return shell.execute(self, host_name, command_line, stdin, logon or Logon())

    def probe(self, src_host: str, targets: list[dict]) -> list[dict]:
        return probe_many(self.fleet, src_host, targets, blackhole=self.blackhole)

    def control_service(self, host_name: str, name: str, action: str) -> int:
        """Win32_Service method semantics: 0 on success, else its return code."""
        try:
            if action in ("auto", "manual", "disabled"):
                self.services.set_start_mode(host_name, name, action)
            elif action == "start":
                self.services.start(host_name, name)
            elif action == "stop":
                self.services.stop(host_name, name)
            elif action == "restart":
                self.services.restart(host_name, name)
            else:
                return 21  # Status Invalid Parameter
        except ServiceError as exc:
            return _WMI_SERVICE_CODES.get(getattr(exc, "code", 0), 8)  # 8: Unknown Failure
        return 0

    def _on_service_change(self, host_name: str) -> None:
        listener = self.smtp.get(host_name)
        if listener is not None:
            listener.refresh()
        self.notify(host_name)

    # -- what the listeners ask of mail delivery (it starts after them, and stops before them)
    def notify(self, host_name: str) -> None:
        if self.delivery is not None:
            self.delivery.notify(host_name)

    def is_delivery(self, peer: tuple[str, int]) -> bool:
        return self.delivery is not None and self.delivery.is_delivery(peer)

    def derived_wmi(self, host: HostState) -> dict[str, list[dict]]:
        """root\\cimv2 classes Windows computes from state kept elsewhere."""
        os_info = host.os
        return {
            "Win32_OperatingSystem": [{
                "Caption": os_info.get("caption"), "Version": os_info.get("version"),
                "BuildNumber": str(os_info.get("build", "")), "CSDVersion": os_info.get("service_pack"),
                "ServicePackMajorVersion": int(os_info.get("service_pack_major", 0) or 0),
                "CSName": os_info.get("computer_name", host.name), "WindowsDirectory": host.system_root,
            }],
            "Win32_ComputerSystem": [{
                "Name": os_info.get("computer_name", host.name), "Domain": os_info.get("domain", ""),
                "DNSHostName": host.fqdn.split(".")[0],
            }],
            "Win32_Service": [s.win32() for s in host.services.values()],
        }

    # -- for users of the lab
    def inventory(self) -> dict[str, Any]:
        """An Ansible inventory for this lab: WinRM over HTTPS, certificate validation ON."""
        managed, unmanaged = {}, {}
        first = next(iter(self.fleet.hosts.values()))
        for host in self.fleet.hosts.values():
            hv: dict[str, Any] = {"ansible_host": host.address, "mailflow_fqdn": host.fqdn}
            if host.ports.get("https", 5986) != 5986:
                hv["ansible_port"] = host.ports["https"]
            if (host.username, host.password) != (first.username, first.password):
                hv["ansible_user"], hv["ansible_password"] = host.username, host.password
            (managed if host.winrm else unmanaged)[host.name] = hv
        return {"all": {
            "vars": {
                "ansible_connection": "winrm", "ansible_port": 5986, "ansible_winrm_scheme": "https",
                "ansible_winrm_transport": "basic", "ansible_winrm_server_cert_validation": "validate",
                "ansible_winrm_ca_trust_path": self.ca.ca_pem_path,
                "ansible_user": first.username, "ansible_password": first.password,
            },
            "children": {
                "mailflow_servers": {"hosts": managed},
                # Peers we cannot manage (e.g. Exchange 5.5 on Windows 2000, no WinRM): probed, never logged into.
                "mailflow_unmanaged": {"hosts": unmanaged},
                "firewalls": {"hosts": {d["name"]: self._firewall_vars(d) for d in self.fleet.network.get("devices", [])},
                              "vars": {"mailflow_firewall_config_dir": self.firewall_config_dir}},
            },
        }}

    def _firewall_vars(self, device: dict) -> dict[str, Any]:
        """network_cli over SSH with host key checking ON (the lab's known_hosts) for an IOS device with an
        address; otherwise the saved config file is all there is to read."""
        if serves_ssh(device):
            hv: dict[str, Any] = {
                "ansible_host": device["address"], "ansible_port": int(device["ports"]["ssh"]),
                "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios",
                "ansible_user": device["username"], "ansible_password": device["password"],
                "ansible_network_cli_ssh_type": "libssh", "ansible_libssh_config_file": self.ssh_config_path,
                "ansible_host_key_checking": True, "mailflow_firewall_platform": "ios",
            }
        else:
            hv = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                  "mailflow_firewall_config_source": "file", "mailflow_firewall_platform": device["kind"]}
        if device.get("segments"):
            hv["mailflow_firewall_segments"] = {k: list(v) for k, v in device["segments"].items()}
        return hv

    def write_inventory(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("# Written by `python -m lab up`; the lab's own CA makes certificate validation possible,\n"
                     "# and its known_hosts SSH host key checking.\n")
            yaml.safe_dump(self.inventory(), fh, sort_keys=False)
