"""SMTP in the lab: each host's listener, a filtered endpoint, and the prober."""
from lab.smtp.blackhole import Blackhole
from lab.smtp.probe import probe_many
from lab.smtp.server import SmtpListener

__all__ = ["Blackhole", "SmtpListener", "probe_many"]
