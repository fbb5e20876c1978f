"""WS-Management / WinRS messages: parse requests, build responses and faults.

Only the Windows Remote Shell (cmd) resource is served, with the shapes
pywinrm, ansible-core's winrm connection plugin and pytest-testinfra read:
they locate elements by attribute (Name="ShellId", State=".../Done") or by tag
suffix (CommandId, Stream, ExitCode, RelatesTo), so the responses copy the
element names a real Windows WinRM service returns.
"""
from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMAN_MS = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

CMD_SHELL_URI = NS_SHELL + "/cmd"
ACTION_CREATE = NS_TRANSFER + "/Create"
ACTION_DELETE = NS_TRANSFER + "/Delete"
ACTION_COMMAND = NS_SHELL + "/Command"
ACTION_SEND = NS_SHELL + "/Send"
ACTION_RECEIVE = NS_SHELL + "/Receive"
ACTION_SIGNAL = NS_SHELL + "/Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
SIGNAL_TERMINATE = NS_SHELL + "/signal/terminate"
STATE_RUNNING = NS_SHELL + "/CommandState/Running"
STATE_DONE = NS_SHELL + "/CommandState/Done"
ANONYMOUS = NS_ADDRESSING + "/role/anonymous"

DEFAULT_MAX_ENVELOPE = 153600  # what pywinrm sends; also the Windows default
DEFAULT_OPERATION_TIMEOUT = 60.0  # seconds, the WinRM service default

_ENVELOPE_OPEN = (
    f'<s:Envelope xml:lang="en-US" xmlns:s="{NS_SOAP}" xmlns:a="{NS_ADDRESSING}" '
    f'xmlns:x="{NS_TRANSFER}" xmlns:w="{NS_WSMAN}" xmlns:p="{NS_WSMAN_MS}" xmlns:rsp="{NS_SHELL}">'
)
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$")


class WSManFault(Exception):
    """A request the service refuses with a SOAP fault (HTTP 500)."""

    def __init__(self, code: str, subcode: str, reason: str, wsman_code: int) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.wsman_code = code, subcode, reason, wsman_code


def operation_timeout_fault() -> WSManFault:
    # The fault pywinrm maps to WinRMOperationTimeoutError; Receive loops in
    # pywinrm and ansible-core catch it and simply ask again.
    return WSManFault(
        "s:Receiver", "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
        2150858793,
    )


def shell_not_found_fault(shell_id: str) -> WSManFault:
    return WSManFault(
        "s:Sender", "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation.",
        2150858843,
    )


def invalid_parameter_fault(detail: str) -> WSManFault:
    # Windows answers an unknown CommandId with Win32 ERROR_INVALID_PARAMETER.
    return WSManFault("s:Sender", "w:InvalidParameter", f"The parameter is incorrect. {detail}", 87)


def malformed_request_fault(detail: str) -> WSManFault:
    return WSManFault("s:Sender", "w:SchemaValidationError", f"The SOAP XML in the message does not match the "
                      f"corresponding XML schema definition. {detail}", 87)


def not_supported_fault(detail: str) -> WSManFault:
    # Win32 ERROR_NOT_SUPPORTED: this lab serves the cmd shell resource only.
    return WSManFault("s:Sender", "a:ActionNotSupported", f"The request is not supported. {detail}", 50)


@dataclass
class WSManRequest:
    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    operation_timeout: float  # seconds
    max_envelope_size: int  # bytes
    options: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None

    def option_is_true(self, name: str, default: bool) -> bool:
        value = self.options.get(name)
        return default if value is None else value.strip().upper() == "TRUE"

    def body_child(self, local_name: str) -> ET.Element:
        found = None if self.body is None else self.body.find(f"{{{NS_SHELL}}}{local_name}")
        if found is None:
            raise invalid_parameter_fault(f"The request body has no rsp:{local_name} element.")
        return found


def parse_duration(text: str | None, default: float) -> float:
    """xs:duration (PT20S, PT60.000S, P0DT0H1M0S) in seconds."""
    match = _DURATION.match((text or "").strip())
    if not match:
        return default
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_request(xml_bytes: bytes) -> WSManRequest:
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise malformed_request_fault(f"The SOAP XML is not valid: {exc}")
    header = root.find(f"{{{NS_SOAP}}}Header")
    if root.tag != f"{{{NS_SOAP}}}Envelope" or header is None:
        raise malformed_request_fault("Not a SOAP 1.2 envelope.")

    def header_text(ns: str, name: str) -> str | None:
        node = header.find(f"{{{ns}}}{name}")
        return node.text.strip() if node is not None and node.text else None

    shell_id = None
    for selector in header.iterfind(f"{{{NS_WSMAN}}}SelectorSet/{{{NS_WSMAN}}}Selector"):
        if selector.get("Name") == "ShellId":
            shell_id = (selector.text or "").strip()
    options = {
        option.get("Name", ""): option.text or ""
        for option in header.iterfind(f"{{{NS_WSMAN}}}OptionSet/{{{NS_WSMAN}}}Option")
    }
    max_envelope = header_text(NS_WSMAN, "MaxEnvelopeSize")
    return WSManRequest(
        action=header_text(NS_ADDRESSING, "Action") or "",
        message_id=header_text(NS_ADDRESSING, "MessageID") or "",
        resource_uri=header_text(NS_WSMAN, "ResourceURI") or "",
        shell_id=shell_id,
        operation_timeout=parse_duration(header_text(NS_WSMAN, "OperationTimeout"), DEFAULT_OPERATION_TIMEOUT),
        max_envelope_size=int(max_envelope) if max_envelope and max_envelope.isdigit() else DEFAULT_MAX_ENVELOPE,
        options=options,
        body=root.find(f"{{{NS_SOAP}}}Body"),
    )


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    header = (
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
    )
    return f"{_ENVELOPE_OPEN}{header}<s:Body>{body}</s:Body></s:Envelope>".encode("utf-8")


def create_response(request: WSManRequest, shell_id: str, endpoint: str, owner: str, client_ip: str) -> bytes:
    # pywinrm takes the first element carrying Name="ShellId" (the selector);
    # other clients read rsp:Shell/rsp:ShellId. Windows returns both.
    sid = escape(shell_id)
    body = (
        f"<x:ResourceCreated><a:Address>{escape(endpoint)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{CMD_SHELL_URI}</w:ResourceURI>"
        f'<w:SelectorSet><w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet>'
        f"</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId><rsp:ResourceUri>{CMD_SHELL_URI}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        f"<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>"
        f"<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
        f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
        f"</rsp:Shell>"
    )
    return _envelope(NS_TRANSFER + "/CreateResponse", request.message_id, body)


def command_response(request: WSManRequest, command_id: str) -> bytes:
    body = f"<rsp:CommandResponse><rsp:CommandId>{escape(command_id)}</rsp:CommandId></rsp:CommandResponse>"
    return _envelope(ACTION_COMMAND + "Response", request.message_id, body)


def send_response(request: WSManRequest) -> bytes:
    return _envelope(ACTION_SEND + "Response", request.message_id, "<rsp:SendResponse/>")


def signal_response(request: WSManRequest) -> bytes:
    return _envelope(ACTION_SIGNAL + "Response", request.message_id, "<rsp:SignalResponse/>")


def delete_response(request: WSManRequest) -> bytes:
    return _envelope(NS_TRANSFER + "/DeleteResponse", request.message_id, "")


def receive_response(
    request: WSManRequest, command_id: str, stdout_b64: str, stderr_b64: str, exit_code: int | None
) -> bytes:
    """One Receive answer; exit_code None means the command is still Running."""
    cid = quoteattr(command_id)
    streams = "".join(
        f'<rsp:Stream Name="{name}" CommandId={cid}>{text}</rsp:Stream>'
        for name, text in (("stdout", stdout_b64), ("stderr", stderr_b64))
        if text
    )
    if exit_code is None:
        state = f'<rsp:CommandState CommandId={cid} State="{STATE_RUNNING}"/>'
    else:
        # Windows closes both streams with an empty End="true" element.
        streams += "".join(
            f'<rsp:Stream Name="{name}" CommandId={cid} End="true"></rsp:Stream>' for name in ("stdout", "stderr")
        )
        state = (
            f'<rsp:CommandState CommandId={cid} State="{STATE_DONE}">'
            f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    body = f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
    return _envelope(ACTION_RECEIVE + "Response", request.message_id, body)


def receive_envelope_overhead(request: WSManRequest, command_id: str) -> int:
    """Bytes a final Receive answer takes besides the base64 stream text."""
    empty = receive_response(request, command_id, "", "", 0)
    per_stream = len(f'<rsp:Stream Name="stdout" CommandId={quoteattr(command_id)}></rsp:Stream>')
    return len(empty) + 2 * per_stream + 16  # 16: room for a long ExitCode


def fault_response(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    reason = escape(fault.reason)
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{NS_FAULT}" Code="{fault.wsman_code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{reason}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope(ACTION_FAULT, relates_to, body)
