"""What ``POST /v1/rank`` accepts, and the errors the gateway answers with: ``{"error": ..., "field": ...}``
naming the field at fault and how to fix it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

INT64 = (-(2**63), 2**63 - 1)


class Rejected(Exception):
    """A request the gateway answers with an error status: ``{"error": ..., "field": ...}``."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.field = status, error, field

    def response(self) -> JSONResponse:
        body = {"error": self.error} | ({"field": self.field} if self.field else {})
        return JSONResponse(body, status_code=self.status)


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"


def _int(value: Any) -> bool:
    # JSON true/false arrive as bool, a subclass of int: an id is never a boolean.
    return type(value) is int and INT64[0] <= value <= INT64[1]


def body_limit(max_items: int) -> int:
    """The most bytes a ranking request may have: room for ``max_items`` ids however it is formatted."""
    return max(1 << 20, 64 * max_items)


def too_large(size: int, max_items: int) -> Rejected:
    return Rejected(
        413, f"the body has {size} bytes or more: far more than {max_items} item ids need", "body"
    )


def parse_rank_request(body: bytes, max_items: int) -> tuple[int, list[int]]:
    """``(user_id, item_ids)`` from a ``/v1/rank`` body, or :class:`Rejected` naming the field at fault:
    400 for a body that is not a JSON object, 413 for one too large to be a request, 422 for a missing or
    mistyped ``user_id``/``item_ids`` (ids are integers: not booleans, strings or fractions), an empty list
    or one longer than ``max_items`` (``FLYWHEEL_SERVE_MAX_ITEMS``)."""
    example = '{"user_id": 42, "item_ids": [7, 19, 3]}'
    if len(body) > body_limit(max_items):
        raise too_large(len(body), max_items)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Rejected(400, f"the body is not valid JSON ({exc}); send {example}", "body") from exc
    if not isinstance(data, dict):
        raise Rejected(400, f"the body is a JSON {type(data).__name__}, not an object like {example}", "body")
    if "user_id" not in data:
        raise Rejected(
            422, f"user_id is missing: the integer id of the user to rank for, as in {example}", "user_id"
        )
    user_id = data["user_id"]
    if not _int(user_id):
        raise Rejected(422, f"user_id must be a 64-bit integer, got {_kind(user_id)}", "user_id")
    if "item_ids" not in data:
        raise Rejected(
            422, f"item_ids is missing: the candidate item ids to score, as in {example}", "item_ids"
        )
    items = data["item_ids"]
    if not isinstance(items, list):
        raise Rejected(422, f"item_ids must be a list of integers, got {_kind(items)}", "item_ids")
    if not items:
        raise Rejected(422, "item_ids is empty: send at least one candidate item id", "item_ids")
    if len(items) > max_items:
        raise Rejected(
            422,
            f"item_ids has {len(items)} candidates, more than the {max_items} allowed "
            "(FLYWHEEL_SERVE_MAX_ITEMS): split the request",
            "item_ids",
        )
    for index, item in enumerate(items):
        if not _int(item):
            raise Rejected(
                422, f"item_ids[{index}] must be a 64-bit integer, got {_kind(item)}", f"item_ids[{index}]"
            )
    return user_id, items
