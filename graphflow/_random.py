"""Random ids for graphflow's own records: checkpoints, messages, tool calls, runs, branches.

They come from a generator of graphflow's own, seeded from the OS and reseeded in a forked child:
user code seeding the ``random`` module cannot make two processes repeat ids, and an id costs no
system call (``os.urandom`` is one per id, and ids are made several times per step). They are
unique, not secret: tokens that guard something (leases) keep using ``os.urandom``.
"""

from __future__ import annotations

import os
import random

_IDS = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_IDS.seed)


def random_hex(bits: int) -> str:
    """``bits`` random bits (a multiple of 4) as ``bits // 4`` lowercase hex digits."""
    return format(_IDS.getrandbits(bits), "x").zfill(bits >> 2)
