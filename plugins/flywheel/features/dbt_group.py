"""One Airflow task per dbt model, wired from the project's manifest: each model shows in the UI with its
own log and retries, and ``dbt build --select <model>`` runs the model with its tests and unit tests.

This stands in for astronomer-cosmos' ``DbtTaskGroup``: reading the manifest here costs about 10 ms at
DAG parse time, where Cosmos' import and manifest load took 0.6-0.8 s (``benchmarks/dag_parse.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.sdk import TaskGroup, task

from flywheel.features.dbt import DBT_PROJECT_DIR

MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"


def load_models(manifest_path: Path = MANIFEST_PATH) -> dict[str, dict[str, Any]]:
    """The project's models (unique id -> name, parents, description, layer) from a dbt manifest."""
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"{manifest_path} is missing: run `python -m flywheel.features.dbt parse` (flywheel runs it "
            "whenever it starts Airflow) so that the DAG knows the dbt models"
        )
    manifest = json.loads(manifest_path.read_text())
    project = manifest["metadata"].get("project_name")
    models = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or node.get("package_name") != project:
            continue
        models[unique_id] = {
            "name": node["name"],
            "parents": [p for p in node["depends_on"]["nodes"] if p.startswith("model.")],
            "description": node.get("description") or "",
            "layer": node["fqn"][1] if len(node["fqn"]) > 2 else "",
        }
    return models


@task
def build_dbt_model(model: str, interval: dict[str, str] | None = None) -> str:
    """``dbt build`` of one model for the run's interval: its unit tests, the model, then its data tests."""
    from flywheel.features.dbt import build_model

    return build_model(model, interval, echo=True)


def dbt_task_group(
    group_id: str = "dbt_models",
    *,
    interval: Any = None,
    pool: str = "warehouse",
    retries: int = 2,
) -> TaskGroup:
    """A task group mirroring the dbt DAG, one ``build_dbt_model`` task per model, in manifest order.

    ``interval`` is the run's interval, usually the XCom of the task that resolved it: every model task
    receives it at run time (a rerun of an old interval rebuilds from its start), and depends on that task.
    """
    models = load_models()
    with TaskGroup(group_id=group_id, tooltip="dbt build, one task per model") as group:
        tasks = {
            unique_id: build_dbt_model.override(
                task_id=model["name"],
                pool=pool,
                retries=retries,
                doc_md=f"**{model['layer']}** model `{model['name']}`: {model['description']}",
            )(model["name"], interval)
            for unique_id, model in models.items()
        }
        for unique_id, model in models.items():
            for parent in model["parents"]:
                if parent in tasks:
                    tasks[parent] >> tasks[unique_id]
    return group
