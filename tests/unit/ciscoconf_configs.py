"""Cisco configs as the devices print them, shared by test_ciscoconf_ios and test_ciscoconf_pix_asa."""
from __future__ import annotations

# An IOS 12.4 edge router as `show running-config` prints it, CRLF line endings as a
# terminal log saves them. The banner holds config-looking text that is not config.
IOS_CBAC = "\r\n".join("""\
Building configuration...

Current configuration : 2817 bytes
!
! Last configuration change at 14:02:11 UTC Tue Mar 6 2007 by admin
!
version 12.4
service timestamps debug datetime msec
service timestamps log datetime msec
service password-encryption
!
hostname EDGE-RTR1
!
boot-start-marker
boot-end-marker
!
enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0
no aaa new-model
ip cef
!
ip inspect name MAILFW smtp alert on audit-trail on timeout 300
ip inspect name MAILFW tcp
ip inspect name MAILFW udp
ip inspect name DMZFW smtp
ip inspect name DMZFW ftp
!
interface FastEthernet0/0
 description LAN - Exchange servers
 ip address 10.1.1.1 255.255.255.0
 ip address 10.1.2.1 255.255.255.0 secondary
 ip inspect MAILFW in
 duplex auto
 speed auto
!
interface FastEthernet0/1
 description WAN to branch
 ip address 192.0.2.1 255.255.255.252
 ip access-group 101 in
 ip inspect MAILFW out
 duplex auto
 speed auto
!
interface Serial0/0/0
 ip address 10.1.0.1 255.255.0.0
 shutdown
!
ip route 0.0.0.0 0.0.0.0 192.0.2.2
!
access-list 101 permit tcp any host 10.1.1.25 eq smtp
access-list 101 deny   ip any any log
!
banner motd ^C
*** EDGE-RTR1 ***
ip inspect name BANNERFW smtp
interface FastEthernet9/9
 ip inspect BANNERFW in
Unauthorised access prohibited.
^C
!
line con 0
line aux 0
line vty 0 4
 password 7 0822455D0A16
 login
!
end
""".split("\n"))

IOS_ESMTP = """\
Current configuration : 912 bytes
!
version 12.4
hostname BRANCH-RTR
banner login ^CAuthorized users only: ip inspect name FAKE smtp^C
banner exec #
ip inspect name FAKE2 smtp
#
ip port-map smtp port 2525
ip inspect name OUTBOUND esmtp max-data 20000000 timeout 600
ip inspect name OUTBOUND http
!
interface FastEthernet0/1
 ip address 203.0.113.2 255.255.255.0
 ip inspect OUTBOUND out
!
end
"""

IOS_ZBF = """\
Building configuration...

Current configuration : 3310 bytes
!
version 15.1
hostname ZBF-RTR
!
class-map type inspect match-any MAIL-PROTOCOLS
 match protocol smtp
 match protocol pop3
class-map type inspect match-all MAIL-TO-EXCH
 match class-map MAIL-PROTOCOLS
 match access-group name TO-EXCHANGE
class-map type inspect match-any WEB
 match protocol http
class-map type inspect match-any ESMTP-ONLY
 match protocol smtp extended
class-map type inspect smtp match-any BIG-MAIL
 match data-length gt 5000000
!
policy-map type inspect OUT-TO-IN
 class type inspect MAIL-TO-EXCH
  inspect 
 class class-default
  drop
policy-map type inspect IN-TO-OUT
 class type inspect WEB
  inspect
 class type inspect ESMTP-ONLY
  inspect
 class class-default
  drop
policy-map type inspect UNUSED
 class type inspect MAIL-PROTOCOLS
  pass
!
zone security inside
zone security outside
zone-pair security out-in source outside destination inside
 service-policy type inspect OUT-TO-IN
zone-pair security in-out source inside destination outside
 service-policy type inspect IN-TO-OUT
!
interface GigabitEthernet0/0
 ip address 10.2.0.1 255.255.255.0
 zone-member security inside
!
interface GigabitEthernet0/1
 ip address 198.51.100.1 255.255.255.0
 zone-member security outside
!
end
"""

# PIX 6.3 `write terminal`: flat, fixups listed whether default or not.
PIX6 = """\
: Saved
:
PIX Version 6.3(5)
interface ethernet0 auto
interface ethernet1 100full
interface ethernet2 auto shutdown
nameif ethernet0 outside security0
nameif ethernet1 inside security100
nameif ethernet2 dmz security50
enable password 8Ry2YjIyt7RRXU24 encrypted
passwd 2KFQnbNIdI.2KYOU encrypted
hostname PIX01
domain-name corp.example
fixup protocol dns maximum-length 512
fixup protocol ftp 21
fixup protocol h323 h225 1720
fixup protocol h323 ras 1718-1719
fixup protocol http 80
fixup protocol rsh 514
fixup protocol rtsp 554
fixup protocol sip 5060
fixup protocol sip udp 5060
fixup protocol skinny 2000
fixup protocol smtp 25
fixup protocol sqlnet 1521
fixup protocol tftp 69
names
name 10.0.10.14 exch04
access-list outside_in permit tcp any host 192.0.2.14 eq smtp
pager lines 24
mtu outside 1500
mtu inside 1500
ip address outside 192.0.2.2 255.255.255.0
ip address inside 10.0.10.1 255.255.255.0
ip address dmz 10.0.0.0 255.0.0.0
static (inside,outside) 192.0.2.14 exch04 netmask 255.255.255.255 0 0
access-group outside_in in interface outside
route outside 0.0.0.0 0.0.0.0 192.0.2.1 1
timeout xlate 3:00:00
telnet timeout 5
terminal width 80
Cryptochecksum:0a1c8d4e2b7f6a5d9c3e1b0f2a4d6c8e
: end
"""

# PIX 7.2 factory config: the fixups became a Modular Policy Framework global_policy.
PIX7 = """\
: Saved
:
PIX Version 7.2(4)
!
hostname pixfw
enable password 8Ry2YjIyt7RRXU24 encrypted
names
!
interface Ethernet0
 nameif outside
 security-level 0
 ip address 198.51.100.2 255.255.255.0
!
interface Ethernet1
 nameif inside
 security-level 100
 ip address 10.3.0.1 255.255.255.0
!
passwd 2KFQnbNIdI.2KYOU encrypted
ftp mode passive
pager lines 24
mtu outside 1500
mtu inside 1500
!
class-map inspection_default
 match default-inspection-traffic
!
!
policy-map type inspect dns preset_dns_map
 parameters
  message-length maximum 512
policy-map global_policy
 class inspection_default
  inspect dns preset_dns_map
  inspect ftp
  inspect h323 h225
  inspect h323 ras
  inspect netbios
  inspect rsh
  inspect rtsp
  inspect skinny
  inspect esmtp
  inspect sqlnet
  inspect sunrpc
  inspect tftp
  inspect sip
  inspect xdmcp
!
service-policy global_policy global
prompt hostname context
Cryptochecksum:9f8c7d6e5b4a39281706f5e4d3c2b1a0
: end
"""

ASA8 = "\r\n".join("""\
: Saved
: Written by enable_15 at 09:12:44.118 UTC Mon Feb 2 2009
:
ASA Version 8.2(5)
!
hostname ciscoasa
domain-name corp.example
enable password 8Ry2YjIyt7RRXU24 encrypted
names
name 10.4.0.25 exch01
!
interface Ethernet0/0
 nameif outside
 security-level 0
 ip address 203.0.113.10 255.255.255.240 standby 203.0.113.11 
!
interface Ethernet0/1
 nameif inside
 security-level 100
 ip address 10.4.0.1 255.255.255.0 
!
interface Ethernet0/2
 nameif dmz
 security-level 50
 ip address 172.16.5.1 255.255.255.0 
!
interface Management0/0
 shutdown
 no nameif
 no security-level
 no ip address
!
banner motd Authorized access only.
banner motd inspect esmtp is not a config line here
ftp mode passive
access-list outside_in extended permit tcp any host 203.0.113.12 eq smtp 
pager lines 24
mtu outside 1500
mtu inside 1500
mtu dmz 1500
!
class-map inspection_default
 match default-inspection-traffic
class-map SMTP-2525
 match port tcp eq 2525
class-map SMTP-RANGE
 match port tcp range 2025 2026
!
!
policy-map type inspect dns preset_dns_map
 parameters
  message-length maximum 512
policy-map type inspect esmtp strict_esmtp
 parameters
  mask-banner
  no mail-relay
 match cmd line length gt 512
  drop-connection log
policy-map global_policy
 class inspection_default
  inspect dns preset_dns_map 
  inspect ftp 
  inspect h323 h225 
  inspect h323 ras 
  inspect rsh 
  inspect rtsp 
  inspect esmtp 
  inspect sqlnet 
  inspect skinny  
  inspect sunrpc 
  inspect xdmcp 
  inspect sip  
  inspect netbios 
  inspect tftp 
policy-map DMZ-POLICY
 class SMTP-2525
  inspect esmtp strict_esmtp 
policy-map SPARE-POLICY
 class SMTP-RANGE
  inspect smtp 
!
service-policy global_policy global
service-policy DMZ-POLICY interface dmz
prompt hostname context 
Cryptochecksum:3d7b1c0e9f2a4b6c8d0e1f2a3b4c5d6e
: end
""".split("\n"))


def smtp(cfg):
    return {(i.rule, i.protocol): i for i in cfg.smtp_inspections()}
