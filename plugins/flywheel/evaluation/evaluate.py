"""One evaluation, end to end: a candidate against the champion (or alone, the first model) on the held-out
window, scored, compared, replayed, decided, recorded in ``registry.evaluations`` and written up as a page."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime

from flywheel.artifacts.storage import join
from flywheel.config import Settings, get_settings
from flywheel.evaluation.attribution import AttributionComparison, attribute_models
from flywheel.evaluation.bootstrap import compare_models
from flywheel.evaluation.gate import GateDecision, decide
from flywheel.evaluation.heldout import held_out_window, load_held_out, requests_for_replay, slices
from flywheel.evaluation.ranking import replay
from flywheel.evaluation.report import write_report
from flywheel.evaluation.scoring import check_artifacts, resolve_version, score_version
from flywheel.registry import baseline_for, record_evaluation
from flywheel.warehouse import open_warehouse

log = logging.getLogger(__name__)

#: Where reports go, under ``FLYWHEEL_ARTIFACTS_DIR``: ``evaluations/<evaluation_id>.html``.
REPORTS_FOLDER = "evaluations"
#: An evaluation id names a file: letters, digits and ``._-`` only, so it can never leave the folder.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` decided, and where its evidence is."""

    evaluation_id: str
    candidate: str
    champion: str | None
    #: The held-out hours ``[start, end)``.
    window: tuple[datetime, datetime]
    #: Impressions in the held-out window.
    rows: int
    decision: GateDecision
    #: The HTML report; None when nothing was recorded (``record=False``).
    report_uri: str | None
    #: Both models' mean |Shapley value| per feature and the shift between them; None when
    #: ``FLYWHEEL_EVAL_ATTRIBUTION_ROWS`` is 0.
    attribution: AttributionComparison | None = None

    @property
    def passed(self) -> bool:
        return self.decision.passed


def default_evaluation_id(candidate: str, champion: str | None, end: datetime) -> str:
    """``<candidate>-vs-<champion or none>-<window end>``: a rerun on the same window replaces its rows."""
    return f"{candidate}-vs-{champion or 'none'}-{end:%Y%m%dT%H%M}"


def evaluate(
    candidate: str,
    champion: str | None = None,
    *,
    settings: Settings | None = None,
    record: bool = True,
    evaluation_id: str | None = None,
) -> Evaluation:
    """Judge ``candidate`` against ``champion`` on the newest ``FLYWHEEL_EVAL_HELD_OUT_HOURS`` published
    hours.

    ``champion`` defaults to ``registry.baseline_for(candidate)``: the champion, or before any promotion the
    newest blessed version older than the candidate; with none (the first model) the gate applies its
    absolute thresholds. Both models score the same impressions; offline metrics (overall and per slice)
    and the ranking replay get paired bootstrap intervals; ``gate.decide`` judges them. Both models'
    Shapley attributions on the same ``FLYWHEEL_EVAL_ATTRIBUTION_ROWS`` rows are compared
    (``attribution.py``): a large shift becomes a note of the decision, reported, never gated. With
    ``record`` the rows (the checks', then the attribution's) go to ``registry.evaluations`` (a rerun with
    the same ``evaluation_id`` replaces them) and the page to
    ``<artifacts_dir>/evaluations/<evaluation_id>.html``.

    The registry status is never changed here: blessing or rejecting the candidate is the DAG's step, so
    a dry run or a rerun cannot move a model through its lifecycle.

    Raises ``RegistryError`` for an unknown version, ``MissingArtifacts`` for a version without its model
    folder, and ``ValueError`` for a bad evaluation id or an empty or too-short held-out window (each message
    names the input and the fix), all before anything is written.
    """
    settings = settings or get_settings()
    ev = settings.evaluation
    if evaluation_id is not None and not _ID.fullmatch(evaluation_id):
        raise ValueError(
            f"evaluation id {evaluation_id!r} is not a file name: use letters, digits, '.', '_' and '-' only"
        )
    warehouse = open_warehouse(settings.warehouse_url)
    cand = resolve_version(candidate, settings)
    check_artifacts(cand)
    champ = resolve_version(champion, settings) if champion else baseline_for(cand.version, warehouse)
    if champ is not None and champ.version == cand.version:
        raise ValueError(
            f"candidate {cand.version} is the champion it would be compared with: "
            "name another --champion, or evaluate a newer candidate"
        )
    if champ is not None:
        check_artifacts(champ)
    start, end = held_out_window(warehouse, ev.held_out_hours)
    if cand.window_end is not None and cand.window_end > start:
        log.warning(
            "candidate %s was trained on data up to %s, inside the held-out window from %s: "
            "its metrics are optimistic",
            cand.version,
            cand.window_end,
            start,
        )
    frame = load_held_out(start, end, settings)
    labels = frame["label"].to_numpy()
    cand_scores = score_version(cand, frame, settings)
    champ_scores = score_version(champ, frame, settings) if champ is not None else None
    log.info(
        "evaluating %s against %s on %d impressions of [%s, %s)",
        cand.version,
        champ.version if champ else "no champion (first model)",
        len(frame),
        start,
        end,
    )
    comparisons = compare_models(
        labels,
        cand_scores,
        champ_scores,
        slices=slices(frame),
        min_slice_rows=ev.min_slice_rows,
        resamples=ev.resamples,
        seed=ev.seed,
    )
    request_ids, clicked, order_value = requests_for_replay(frame)
    comparisons += replay(
        request_ids, clicked, order_value, cand_scores, champ_scores, resamples=ev.resamples, seed=ev.seed
    )
    decision = decide(comparisons, ev)
    attribution = attribute_models(cand, champ, frame, settings)
    note = attribution.note() if attribution else None
    if note:
        log.warning("%s: %s", cand.version, note)
        decision = replace(decision, notes=[*decision.notes, note])
    champion_version = champ.version if champ else None
    evaluation_id = evaluation_id or default_evaluation_id(cand.version, champion_version, end)
    report_uri = None
    if record:
        record_evaluation(
            evaluation_id,
            cand.version,
            decision.as_rows() + (attribution.as_rows() if attribution else []),
            baseline_version=champion_version,
            warehouse=warehouse,
        )
        report_uri = write_report(
            join(settings.artifacts_dir, REPORTS_FOLDER, f"{evaluation_id}.html"),
            candidate=cand.version,
            champion=champion_version,
            labels=labels,
            candidate_scores=cand_scores,
            champion_scores=champ_scores,
            decision=decision,
            resamples=ev.resamples,
            seed=ev.seed,
            window=(start, end),
            **(attribution.report_inputs() if attribution else {}),
        )
    return Evaluation(
        evaluation_id,
        cand.version,
        champion_version,
        (start, end),
        len(frame),
        decision,
        report_uri,
        attribution,
    )
