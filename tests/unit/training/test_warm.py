"""Warm starts: the model in service is read from its folder, fits a new training set or says why not,
starts exactly where it was (new categories included), is searched around its hyperparameters, and a
resumed run keeps the start its first run chose. The setting and the form decide whether to ask."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from flywheel.artifacts.folder import METADATA_FILE, MODEL_DIR, score_exported, write_json
from flywheel.artifacts.spec import encode
from flywheel.config import Settings, SettingsError, get_settings
from flywheel.training.dataset import time_split
from flywheel.training.model import build_model, export_model
from flywheel.training.space import load_search_space
from flywheel.training.trainer import DEFAULT_PARAMS, fit, prepare_data
from flywheel.training.warm import (
    LR_SPAN,
    choose_start,
    first_guess,
    fit_to,
    load_champion,
    narrowed_space,
    warm_budget,
)

PARAMS = {"lr": 2e-3, "embedding_dim": 8, "mlp_width": 64, "cross_layers": 1, "dropout": 0.15}


def _champion(frame: pd.DataFrame, folder: Path, params: dict = PARAMS) -> Path:
    """A model folder as training leaves it: TorchScript, feature spec and metadata with its params."""
    torch.set_num_threads(1)
    data = prepare_data(frame)
    trainer = fit(data, params, max_epochs=1, seed=0)
    export_model(trainer.state_dict(), data.spec, folder)
    write_json(folder / METADATA_FILE, {"params": params, "metrics": {"val_auc": trainer.best_auc}})
    return folder


@pytest.fixture(scope="module")
def without_one_category(small_frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The training set less every row of one user_top_category value: a champion that never saw it."""
    train_split, _, _ = time_split(small_frame, 0.2)  # the spec is fitted on it: the value must be there
    value = train_split["user_top_category"].dropna().astype(str).value_counts().index[-1]
    return small_frame[small_frame["user_top_category"].astype(str) != value], value


def test_a_champion_starts_exactly_where_it_was_even_for_categories_it_never_saw(
    small_frame, without_one_category, tmp_path
) -> None:
    older, unseen = without_one_category
    folder = _champion(older, tmp_path / "v0001")

    champion, note = fit_to(load_champion(str(folder), "v0001"), small_frame, 0.2)

    assert champion is not None and "user_top_category +1" in note
    assert champion.spec.vocabularies["user_top_category"][-1] == unseen
    assert champion.params == {**DEFAULT_PARAMS, **PARAMS}
    model = build_model(champion.spec.cardinalities, len(champion.spec.numeric), champion.params)
    model.load_state_dict(champion.weights)
    rows = small_frame[small_frame["user_top_category"].astype(str) == unseen].head(200)
    with torch.no_grad():
        grown = torch.sigmoid(model.eval()(*map(torch.as_tensor, encode(rows, champion.spec))))
    served = score_exported(folder, *encode(rows, load_champion(str(folder), "v0001").spec))
    torch.testing.assert_close(grown, torch.as_tensor(served), rtol=1e-5, atol=1e-6)


def test_a_champion_whose_spec_is_laid_out_otherwise_is_not_fine_tuned(small_frame, tmp_path) -> None:
    folder = _champion(small_frame, tmp_path / "v0001")
    spec = json.loads((folder / "feature_spec.json").read_text())
    spec["id_buckets"]["user_id"] = 512  # a champion hashed with other buckets: its rows mean other users
    (folder / "feature_spec.json").write_text(json.dumps(spec))
    lines: list[str] = []

    champion, record = choose_start(None, str(folder), "v0001", small_frame, 0.2, lines.append)

    assert champion is None and record["from"] is None
    assert "id hash buckets" in record["reason"] and lines[-1].startswith(
        "cold search: cannot start from v0001"
    )


def test_a_missing_champion_folder_means_a_cold_search_that_names_it(small_frame, tmp_path) -> None:
    lines: list[str] = []
    champion, record = choose_start(None, str(tmp_path / "gone"), "v0007", small_frame, 0.2, lines.append)
    assert champion is None and record["from"] is None
    assert "v0007" in record["reason"] and "lacks metadata.json" in record["reason"]


def test_a_resumed_run_keeps_the_start_of_its_first_run(small_frame, tmp_path) -> None:
    folder = _champion(small_frame, tmp_path / "v0002")
    cold = {"from": None, "artifact_uri": None, "reason": "warm start off"}

    # A champion was promoted after the first start: the resumed search must not switch to it half-way.
    champion, record = choose_start({"warm_start": cold}, str(folder), "v0002", small_frame, 0.2, print)
    assert champion is None and record == cold

    warm = {"from": "v0002", "artifact_uri": str(folder), "reason": "fits"}
    champion, record = choose_start({"warm_start": warm}, None, None, small_frame, 0.2, print)
    assert champion is not None and champion.version == "v0002" and record == warm


def test_the_warm_search_looks_near_the_champion_with_fewer_trials() -> None:
    params = {**DEFAULT_PARAMS, **PARAMS}
    space = narrowed_space(load_search_space(), params, "v0003")

    assert space.parameters["lr"] == {"type": "loguniform", "low": 2e-3 / LR_SPAN, "high": 2e-3}
    for name in ("embedding_dim", "cross_layers", "mlp_layers", "mlp_width", "batch_size", "optimizer"):
        assert space.parameters[name] == {"type": "choice", "values": [params[name]]}  # fits its weights
    assert 0.05 == pytest.approx(space.parameters["dropout"]["low"])
    guess = first_guess(params)
    assert space.parameters["lr"]["low"] < guess["lr"] < space.parameters["lr"]["high"]
    assert [warm_budget(b) for b in (1, 4, 8, 9)] == [1, 2, 4, 5]


def test_the_setting_decides_unless_the_form_does(home: Settings, monkeypatch) -> None:
    from flywheel.registry import register_candidate, set_status
    from flywheel.training.tasks import warm_start
    from flywheel.warehouse import open_warehouse

    monkeypatch.setenv("FLYWHEEL_TRAIN_WARM_START", "true")
    settings = get_settings()
    assert warm_start({}, settings) is None  # asked, but nothing in service: a cold search
    warehouse = open_warehouse(settings.warehouse_url)
    register_candidate(
        data_version="d1", artifact_uri="/models/v1/model", params={}, metrics={}, warehouse=warehouse
    )
    set_status("v0001", "blessed", warehouse, reason="gate passed")
    assert warm_start({}, settings) == {"version": "v0001", "artifact_uri": "/models/v1/model"}
    assert warm_start({"warm_start": False}, settings) is None  # the form overrides the setting
    monkeypatch.setenv("FLYWHEEL_TRAIN_WARM_START", "false")
    assert warm_start({"warm_start": None}, get_settings()) is None
    assert warm_start({"warm_start": True}, get_settings())["version"] == "v0001"


def test_a_malformed_warm_start_setting_names_the_value_and_the_fix(monkeypatch) -> None:
    monkeypatch.setenv("FLYWHEEL_TRAIN_WARM_START", "sometimes")
    with pytest.raises(SettingsError, match="FLYWHEEL_TRAIN_WARM_START='sometimes' is not a boolean.*=true"):
        get_settings()


def test_a_warm_run_fine_tunes_the_champion_and_the_candidate_says_from_which(
    home: Settings, small_frame, tmp_path
) -> None:
    from flywheel.registry import get_version
    from flywheel.training.backends import train
    from flywheel.training.runs import prepare_training_set, register_candidate, warm_start_args
    from flywheel.warehouse import open_warehouse

    folder = _champion(small_frame, tmp_path / "v0009")
    dataset = prepare_training_set(small_frame, home)["dataset_uri"]
    output = home.artifacts_dir / "training" / "warm"
    source = {"version": "v0009", "artifact_uri": str(folder)}

    metadata = train(dataset, str(output), 4, 1, extra_args=warm_start_args(source))

    assert metadata == json.loads((output / MODEL_DIR / METADATA_FILE).read_text())
    assert metadata["warm_start"]["from"] == "v0009"
    assert metadata["search"]["trial_count"] == warm_budget(4) == 2
    for trial in metadata["search"]["trials"]:
        assert trial["params"]["embedding_dim"] == PARAMS["embedding_dim"]
        assert PARAMS["lr"] / LR_SPAN <= trial["params"]["lr"] <= PARAMS["lr"]
    registered = register_candidate(str(output), "warm-run", None, home)
    assert registered["warm_start_from"] == "v0009"
    stored = get_version(registered["version"], open_warehouse(home.warehouse_url))
    assert stored.metrics["warm_start_from"] == "v0009"


def test_only_a_judged_model_in_service_is_fine_tuned(home) -> None:
    from datetime import datetime

    from flywheel import registry
    from flywheel.training.runs import warm_start_source
    from flywheel.warehouse import open_warehouse

    warehouse = open_warehouse(home.warehouse_url)
    assert warm_start_source(home) is None  # nothing registered
    version = registry.register_candidate(
        data_version="d1",
        artifact_uri=str(home.artifacts_dir / "m1"),
        params={},
        metrics={},
        window=(datetime(2026, 1, 1), datetime(2026, 1, 2)),
        warehouse=warehouse,
    )
    assert warm_start_source(home) is None  # a candidate the gate has not judged
    registry.set_status(version, "blessed", warehouse, reason="gate passed")
    assert warm_start_source(home) == {"version": version, "artifact_uri": str(home.artifacts_dir / "m1")}
