"""Who holds an incident's lease: a runner named by its host and process, so a runner on
the same machine can tell a dead holder from a live one without waiting out the lease."""

from __future__ import annotations

import os
import secrets
import socket


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead(owner: str) -> bool:
    """True only when the lease holder is a process on this machine that no longer exists:
    no need to wait out the lease after a crash. Anything uncertain counts as alive."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
