"""The dispatcher's ADSI operations in the lab: Active Directory (with the second hop) and the IIS metabase.

Active Directory: a process WinRS started over NTLM (or Kerberos without
delegation) holds no credentials for the domain controller, so its LDAP runs as
ANONYMOUS LOGON. RootDSE answers anyone; a DC refuses anything else with
0x80072020 "An operations error occurred." and 000004DC ("In order to perform
this operation a successful bind must be completed on the connection"), the
error ansible/ansible-modules-extras#2933 and GhostPack/Certify#34 report for
exactly this case. A Basic (cleartext) logon, a local logon, a host that is
itself a DC (Win32_ComputerSystem.DomainRole 4 or 5) and an explicit-credential
bind with a domain account all work. The lab's domain accounts are the hosts'
WinRM accounts; a bind with anything else fails 0x8007052E as a DC does.
"""
from __future__ import annotations

import re

from lab import metabase as lab_metabase
from lab.shell.query import parse_ldap

OPERATIONS_ERROR = ("An operations error occurred.", 0x80072020,
                    "000004DC: LdapErr: DSID-0C0906DC, comment: In order to perform this operation a successful bind "
                    "must be completed on the connection., data 0, vece")
LOGON_FAILURE = ("Logon failure: unknown user name or bad password.", 0x8007052E,
                 "8009030C: LdapErr: DSID-0C0904D1, comment: AcceptSecurityContext error, data 52e, vece")
NO_SUCH_OBJECT = ("There is no such object on the server.", 0x80072030, "")


def com_error(method: str, nargs: int, error: tuple[str, int, str]) -> str:
    """What the dispatcher's ErrText makes of a DirectoryServicesCOMException thrown by a .NET method call."""
    text, code, extended = error
    out = f'Exception calling "{method}" with "{nargs}" argument(s): "{text}\r\n" (0x{code:08X})'
    return out + (f" {extended}" if extended else "")


def _short(user: str) -> str:
    return user.split("\\")[-1].split("@")[0].lower()


class DirectoryOps:
    """Mixin for DispatcherEmulation: needs self.fleet, self.host, self.logon, self.context, self.row, OpFailed."""

    def _is_dc(self) -> bool:
        return int(self.host.os.get("domain_role", 3) or 3) >= 4

    def _bind(self, method: str, nargs: int, anonymous_ok: bool = False) -> None:
        """Raise as the dispatcher's LDAP call would, or return when the bind is good enough for the read."""
        user = self.context.ad_username
        if user:
            good = any(_short(h.username) == _short(user) and h.password == self.context.ad_password
                       for h in self.fleet.hosts.values())
            if not good:
                raise self.failed(com_error(method, nargs, LOGON_FAILURE))
            return
        if anonymous_ok or self.logon.network_credentials or self._is_dc():
            return
        raise self.failed(com_error(method, nargs, OPERATIONS_ERROR))

    def _config_nc(self) -> str:
        self._bind("Contains", 1, anonymous_ok=True)  # RootDSE answers an anonymous caller
        for dn in self.fleet.ad.dns():  # not to_plain(), which copies every object: 5 ms a search at 300 hosts
            m = re.search(r"(CN=Configuration,DC=.*)$", dn, re.I)
            if m:
                return m[1]
        raise self.failed("The specified domain either does not exist or could not be contacted.")

    @staticmethod
    def _attr(values: dict, attr: str) -> list[str] | None:
        """None for an attribute the object does not have (the dispatcher's AttrValues)."""
        found = next((v for k, v in values.items() if k.lower() == attr.lower()), None)
        return None if found is None else [str(v) for v in found]

    def _ldap_computer(self) -> str:
        """$env:COMPUTERNAME escaped for an LDAP filter, as the dispatcher's LdapComputer does (RFC 4515)."""
        name = str(self.host.os.get("computer_name") or self.host.name).upper()
        for char, escaped in (("\\", "\\5c"), ("*", "\\2a"), ("(", "\\28"), (")", "\\29")):
            name = name.replace(char, escaped)
        return name

    def op_adsi_search(self, index: int, base: str, ldap_filter: str, attrs: tuple) -> None:
        ldap_filter = ldap_filter.replace("{computer}", self._ldap_computer())
        if base == "{computer-server}":
            # The dispatcher's first search: this computer's Exchange server object under the configuration NC.
            own = parse_ldap(f"(&(objectClass=msExchExchangeServer)(cn={self._ldap_computer()}))")
            config = self._config_nc()
            self._bind("FindAll", 0)
            base = next((dn for dn, values in self.fleet.ad.search(config) if own(values)), None)
            if base is None:
                return
        base = base or self._config_nc()
        pred = parse_ldap(ldap_filter)
        self._bind("FindAll", 0)
        for dn, values in self.fleet.ad.search(base):
            if not pred(values):
                continue
            pairs = ["dn", dn]
            for attr in attrs:
                pairs += ["a:" + attr, self._attr(values, attr)]
            self.row(index, "entry", *pairs)

    def op_adsi_read(self, index: int, path: str, attrs: tuple) -> None:
        if path.lower().startswith("iis://"):
            node = self._metabase_node(path)[2]
            values = {k: [v] for k, v in node.items() if not k.startswith("_")}
        else:
            self._bind("Contains", 1)
            values = self.fleet.ad.get(path)
            if values is None:
                raise self.failed(com_error("Contains", 1, NO_SUCH_OBJECT))
        pairs = ["dn", path]
        for attr in attrs:
            pairs += ["a:" + attr, self._attr(values, attr)]
        self.row(index, "entry", *pairs)

    def op_adsi_write(self, index: int, dn: str, attr: str, values: tuple, kind: str) -> None:
        if dn.lower().startswith("iis://"):
            self._metabase_write(index, dn, attr, values)
            return
        self._bind("Contains", 1)
        if self.fleet.ad.get(dn) is None:
            raise self.failed(com_error("Contains", 1, NO_SUCH_OBJECT))
        if kind == "int":
            try:
                new = [int(v) for v in values]
            except ValueError as exc:
                raise self.failed(f'Cannot convert value to type "System.Int32". {exc}') from exc
        else:
            new = list(values)
        prev = self.fleet.ad.set_attr(dn, attr, new or None)
        self.row(index, "prev", "values", [str(v) for v in (prev or [])])
        self.row(index, "ok", "dn", dn, "attr", attr)

    # -- the IIS ADSI provider: MetaBase.xml, which IIS Admin serves
    def _metabase_node(self, path: str) -> tuple[str, str, dict]:
        """(MetaBase.xml text, /LM/... location, its properties) for IIS://localhost/..."""
        iisadmin = self.host.service("IISADMIN")
        if iisadmin is None or iisadmin.state != "running":
            raise self.failed("The RPC server is unavailable. (Exception from HRESULT: 0x800706BA)")
        rest = path.split("://", 1)[1].split("/", 1)
        if rest[0].lower() != "localhost" or len(rest) < 2:
            raise self.failed("The system cannot find the path specified.")
        location = "/LM/" + rest[1].strip("/")
        current = self.host.files.read(self.host.metabase_path)
        text = current.data.decode("utf-8", "replace") if current else ""
        try:
            nodes = {v["_location"].lower(): v for v in lab_metabase.parse(text).values()}
        except lab_metabase.MetabaseCorrupt:  # IIS Admin serves no metabase it cannot load
            raise self.failed("The system cannot find the path specified.") from None
        node = nodes.get(location.lower())
        if node is None:
            raise self.failed("The system cannot find the path specified.")
        return text, location, node

    def _metabase_write(self, index: int, path: str, prop: str, values: tuple) -> None:
        """IIS://localhost/SMTPSVC/1 -> /LM/SMTPSVC/1 in MetaBase.xml (SaveData flushes it, as the script asks)."""
        text, location, node = self._metabase_node(path)
        prev = next((v for k, v in node.items() if k.lower() == prop.lower()), None)
        self.row(index, "prev", "values", [] if prev is None else [prev])
        new = lab_metabase.set_property(text, location, prop, values[0] if values else None)
        self.host.files.write(self.host.metabase_path, new, self.now())
        self.row(index, "ok", "dn", path, "attr", prop)
