# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/drain_watch.py on the controller.

DOCUMENTATION = r"""
module: drain_watch
short_description: Watch a host's stuck mail leave after a change
version_added: 0.2.0
description:
  - Reads the host's SMTP links (C(Exchange_SMTPLink)) and queue folders - one WinRM command per read, every
    O(poll) seconds for at most O(wait) seconds - until every link that was in Retry at the start has left Retry
    and emptied. Returns, per such link, its messages and oldest message before and after and whether it drained,
    and how many queued messages left the queue folders.
  - Never changes the host. It waits for Exchange's own retry schedule; whether Exchange 2003 offers a way to retry
    a link now (over WMI) is not confirmed, so nothing is triggered.
options:
  wait:
    description: Seconds to watch at most; 0 reads once.
    type: int
    default: 180
  poll:
    description: Seconds between reads.
    type: int
    default: 30
  knowledge:
    description: Overrides merged over the knowledge file (where the links and queue folders are read).
    type: dict
    default: {}
  before:
    description:
      - The host's snapshot from before the change (the pre-flight audit's). The links stuck in it count as stuck at the
        start, so mail that left between the change and the watch is reported as drained. Without it (or when it
        cannot be read), the watch's own first read is the start.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: windows
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Did the stuck mail leave?
  mailflow.exchange.drain_watch:
    wait: 300
    poll: 30
"""

RETURN = r"""
links:
  description:
    - Each link in Retry at the start - link, peer (the inventory host it names, when one does), messages_before,
      messages_after, oldest_before, oldest_after, retry_after, drained.
  type: list
  elements: dict
  returned: always
drained:
  description: Every link stuck at the start has drained.
  type: bool
  returned: always
stuck_after:
  description: The links still stuck when the watch ended.
  type: list
  elements: str
  returned: always
queued_before:
  description: Messages in the queue folders at the start.
  type: int
  returned: always
queued_after:
  description: Messages in the queue folders at the end.
  type: int
  returned: always
delivered:
  description: Messages that left the queue folders during the watch.
  type: int
  returned: always
waited_seconds:
  description: How long it watched.
  type: float
  returned: always
"""
