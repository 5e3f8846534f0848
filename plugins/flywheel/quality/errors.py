"""What a gate raises: ``DataQualityError`` when it cannot run, ``GateFailed`` when the data is bad."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flywheel.quality.gate import GateResult


class DataQualityError(RuntimeError):
    """A quality gate could not run or the data it checked is unfit; the message says what and where."""


class GateFailed(DataQualityError):
    """A partition failed its suite: it was quarantined, and ``result`` holds each failed expectation."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(result.summary())
        self.result = result


class GatesFailed(DataQualityError):
    """Several gates of one task failed; ``results`` holds each one's ``GateResult``."""

    def __init__(self, results: list[GateResult]) -> None:
        lines = "\n".join(result.summary() for result in results)
        super().__init__(f"{len(results)} quality gate(s) failed:\n{lines}")
        self.results = results
