"""``train_model``: its form offers a warm start whose default (what drift-triggered runs use) is the
setting."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("setting, expected", [("true", True), ("false", False)])
def test_the_form_offers_warm_start_defaulting_to_the_setting(setting, expected, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FLYWHEEL_TRAIN_WARM_START", setting)
    bag = DagBag(dag_folder="dags/train_model.py")
    assert bag.import_errors == {}
    param = bag.dags["train_model"].params.get_param("warm_start")

    assert param.value is expected
    assert param.schema["type"] == "boolean"
