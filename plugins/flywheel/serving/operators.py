"""The canary as one deferrable task: it routes a step's share of users, defers to
:class:`~flywheel.serving.triggers.CanaryStepTrigger` (the wait runs in the triggerer and holds no worker
slot), and on each event judges the step, then goes on, holds, rolls back (the task fails, saying why, and
is not retried) or, after the last step, promotes the version and emits ``model_deployed``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

log = logging.getLogger(__name__)


class CanaryRolloutOperator(BaseOperator):
    """Roll ``plan`` (the XCom of the task ``plan_task_id``) out through ``FLYWHEEL_CANARY_STEPS``."""

    template_fields: Sequence[str] = ()

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Any) -> Any:
        plan = context["ti"].xcom_pull(task_ids=self.plan_task_id)
        if not plan:
            raise AirflowSkipException("nothing to deploy: no blessed version")
        if not plan.get("champion"):
            return self._promote(plan, context)
        return self._start(plan, 0, context, canary_started=None)

    def _start(self, plan: dict, step: int, context: Any, canary_started: float | None) -> Any:
        from flywheel.config import get_settings
        from flywheel.serving.tasks import start_step, trigger_arguments
        from flywheel.serving.triggers import CanaryStepTrigger

        settings = get_settings()
        if canary_started is not None:
            plan = {**plan, "canary_started": canary_started}
        try:
            info = start_step(plan, step, settings)
        except Exception as exc:
            self._rollback(plan, f"step {step} could not start: {exc}", context)
        self.defer(
            trigger=CanaryStepTrigger(**trigger_arguments(info, plan, settings)),
            method_name="resume",
            kwargs={"plan": plan, "step_info": info},
        )

    def resume(
        self, context: Any, event: dict | None = None, plan: dict | None = None, step_info: dict | None = None
    ) -> Any:
        import time

        from flywheel.config import get_settings
        from flywheel.serving.canary import ADVANCE, HOLD
        from flywheel.serving.tasks import HOLD_SECONDS, judge_step, trigger_arguments
        from flywheel.serving.triggers import CanaryStepTrigger

        assert plan is not None and step_info is not None
        settings = get_settings()
        event = event or {"status": "timeout"}
        try:
            verdict = judge_step(plan, step_info, event, context["run_id"], settings)
        except Exception as exc:
            self._rollback(plan, f"step {step_info['step']} could not be judged: {exc}", context)
        step = int(step_info["step"])
        if verdict["decision"] == HOLD:
            held = {**step_info, "ready_at": time.time() + HOLD_SECONDS}
            self.defer(
                trigger=CanaryStepTrigger(**trigger_arguments(held, plan, settings)),
                method_name="resume",
                kwargs={"plan": plan, "step_info": held},
            )
        if verdict["decision"] != ADVANCE:
            self._rollback(plan, verdict["reason"], context)
        if step + 1 < len(settings.serving.canary_steps):
            return self._start(plan, step + 1, context, canary_started=step_info["canary_started"])
        return self._promote(plan, context)

    def _promote(self, plan: dict, context: Any) -> dict:
        from flywheel.assets import MODEL_DEPLOYED
        from flywheel.serving.tasks import promote

        extra = promote(plan, context["run_id"])
        context["outlet_events"][MODEL_DEPLOYED].extra = extra
        return extra

    def _rollback(self, plan: dict, reason: str, context: Any) -> None:
        from flywheel.serving.tasks import rollback

        message = rollback(plan, reason, context["run_id"])
        raise AirflowFailException(message)
