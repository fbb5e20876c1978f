"""mailflow's lab: a simulated Exchange 2003 fleet speaking WinRM and SMTP on loopback."""
import os
import sys

# The lab emulates the collection's PowerShell wire format, so it imports the
# collection's codec from the checkout (collections/ansible_collections/... links here).
_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
