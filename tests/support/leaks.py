"""What counts as a leak: the sockets this process holds open."""

from __future__ import annotations

import os
from typing import Set


def socket_fds() -> Set[str]:
    # Each open socket appears in /proc/self/fd as "socket:[inode]"; the inode
    # identifies it even when the fd number is reused.
    found = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found
