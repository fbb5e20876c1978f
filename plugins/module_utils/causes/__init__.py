"""The cause catalog: one module per cause, each with CAUSE (its catalog entry) and detect(fleet).

The order is KB 919091's order of causes, then the field notes' causes; the
ranking of present causes on a host follows it (see audit.rank).
"""
from __future__ import annotations

import importlib

CAUSE_IDS = (
    "sav_internet_email_autoprotect",  # KB 919091 cause 1
    "stnef_legacy_peer",               # cause 2
    "smsmse_heuristics",               # cause 3
    "smtp_banner_missing",             # cause 4
    "cisco_smtp_inspection",           # cause 5
    "metabase_corrupt",                # cause 6 ("if the other causes do not apply")
    "port25_blocked",                  # field notes 002, case 1
    "smarthost_misconfigured",         # field notes 002, case 2
    "av_scans_iis_folders",            # field notes 002, case 3
    "peer_smtp_unavailable",           # field notes 002, case 4
    "glitch_retry_short",              # field notes 004
    "greylist_hotfix_missing",         # KB 934709 / KB 950757
    "ims_connection_leak",             # Q175982
)

# The causes with a fix role (mailflow.exchange.fix_<id>), in the order playbooks/fix.yml runs them on a host:
# IIS must load its metabase and SMTP must run before anything about SMTP can be verified; the firewall
# next, then SMTP settings, then the anti-virus products, then what needs packages or stop-gaps.
# cisco_smtp_inspection is fixed on the network device, not here.
FIXABLE = (
    "metabase_corrupt", "peer_smtp_unavailable", "port25_blocked", "smtp_banner_missing", "smarthost_misconfigured",
    "glitch_retry_short", "stnef_legacy_peer", "av_scans_iis_folders", "sav_internet_email_autoprotect",
    "smsmse_heuristics", "greylist_hotfix_missing", "ims_connection_leak",
)

# Fixed on network devices (the firewalls group), before the servers' fixes.
NETWORK_FIXABLE = ("cisco_smtp_inspection",)


def modules():
    """The detector modules, in catalog order."""
    return [importlib.import_module(f"{__name__}.{cid}") for cid in CAUSE_IDS]


def catalog():
    """{cause id: Cause} in catalog order."""
    return {m.CAUSE.id: m.CAUSE for m in modules()}
