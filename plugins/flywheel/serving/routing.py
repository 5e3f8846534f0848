"""The traffic split: a stable hash puts each user at a point in [0, 1); users below the canary's weight get
the canary. The same user stays in the same bucket across requests, processes and restarts, and raising the
weight only moves champion users to the canary, never back.
"""

from __future__ import annotations

import hashlib

from flywheel.serving.state import CanaryState

CHAMPION, CANARY = "champion", "canary"
#: The hash's top 53 bits divided by 2**53: a float in [0, 1) that never rounds up to 1.0.
_BITS = 53


def user_hash(user_id: int) -> float:
    """``blake2b`` (8-byte digest) of the user id's decimal text, as a float in [0, 1).

    Reproducible anywhere: take the digest as a big-endian unsigned 64-bit integer, shift it right by 11
    bits and divide by 2**53. Python's ``hash()`` would not do: it is salted per process.
    """
    digest = hashlib.blake2b(str(int(user_id)).encode("ascii"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> (64 - _BITS)) / float(1 << _BITS)


def choose_bucket(user_id: int, state: CanaryState) -> str:
    """``"canary"`` when a canary is set and the user's hash is below its weight, else ``"champion"``."""
    if state.canary and user_hash(user_id) < state.weight:
        return CANARY
    return CHAMPION
