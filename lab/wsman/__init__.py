"""The lab's WinRM (WS-Management / WinRS) service.

server.WinRMListener serves one host on one scheme; service.WinRSService
holds what the operations do; soap builds and parses the XML; auth does NTLM
(with message encryption) and Basic; shells tracks open shells and commands.
"""
