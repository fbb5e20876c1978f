"""Network devices the lab serves over SSH: an IOS command line (ios, ios_config) behind a paramiko server (sshd)."""
