"""The traffic split: the same user always lands in the same bucket, and the canary gets its share."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np

from flywheel.serving.routing import CANARY, CHAMPION, choose_bucket, user_hash
from flywheel.serving.state import CanaryState


def test_user_hash_is_the_documented_blake2b_rule() -> None:
    for user in (0, 1, 42, -7, 2**62):
        digest = hashlib.blake2b(str(user).encode(), digest_size=8).digest()
        assert user_hash(user) == (int.from_bytes(digest, "big") >> 11) / 2**53
    assert user_hash(2**63 - 1) < 1.0


def test_user_hash_is_the_same_in_another_process() -> None:
    # Python's own hash() is salted per process; this one must not be.
    code = (
        "import json; from flywheel.serving.routing import user_hash; "
        "print(json.dumps([user_hash(u) for u in range(50)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [user_hash(u) for u in range(50)]


def test_hashes_are_uniform_so_the_weight_is_the_share_of_users() -> None:
    hashes = np.array([user_hash(u) for u in range(20_000)])
    assert ((hashes >= 0) & (hashes < 1)).all()
    for weight in (0.05, 0.25, 0.5):
        share = float((hashes < weight).mean())
        assert abs(share - weight) < 4 * np.sqrt(weight * (1 - weight) / len(hashes)), (weight, share)


def test_buckets_follow_the_state_and_raising_the_weight_never_moves_users_back() -> None:
    users = range(2000)
    assert {choose_bucket(u, CanaryState("v1")) for u in users} == {CHAMPION}
    assert {choose_bucket(u, CanaryState("v1", None, weight=1.0)) for u in users} == {CHAMPION}  # no canary
    assert {choose_bucket(u, CanaryState("v1", "v2", weight=0.0)) for u in users} == {CHAMPION}
    assert {choose_bucket(u, CanaryState("v1", "v2", weight=1.0)) for u in users} == {CANARY}
    previous: set[int] = set()
    for weight in (0.05, 0.1, 0.25, 0.5, 1.0):
        canary = {u for u in users if choose_bucket(u, CanaryState("v1", "v2", weight)) == CANARY}
        assert previous <= canary
        previous = canary
    # The same user, asked twice, gets the same answer.
    state = CanaryState("v1", "v2", 0.3)
    assert [choose_bucket(u, state) for u in users] == [choose_bucket(u, state) for u in users]
