"""The evaluation section of the settings: defaults, typed values, and bad FLYWHEEL_EVAL_* values refused
with a message that names the variable and a good value."""

from __future__ import annotations

import pytest

from flywheel.config import EvaluationSettings, SettingsError, get_settings


def test_defaults_and_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().evaluation == EvaluationSettings()
    monkeypatch.setenv("FLYWHEEL_EVAL_RESAMPLES", "2000")
    monkeypatch.setenv("FLYWHEEL_EVAL_AUC_MARGIN", "0.02")
    evaluation = get_settings().evaluation
    assert (evaluation.resamples, evaluation.auc_margin, evaluation.held_out_hours) == (2000, 0.02, 6)


def test_attribution_is_on_by_default_and_zero_rows_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluation = get_settings().evaluation
    assert (evaluation.attribution_rows, evaluation.attribution_shift) == (2000, 0.3)
    monkeypatch.setenv("FLYWHEEL_EVAL_ATTRIBUTION_ROWS", "0")
    monkeypatch.setenv("FLYWHEEL_EVAL_ATTRIBUTION_SHIFT", "0.5")
    evaluation = get_settings().evaluation
    assert (evaluation.attribution_rows, evaluation.attribution_shift) == (0, 0.5)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("FLYWHEEL_EVAL_HELD_OUT_HOURS", "0"),
        ("FLYWHEEL_EVAL_RESAMPLES", "10"),
        ("FLYWHEEL_EVAL_RESAMPLES", "many"),
        ("FLYWHEEL_EVAL_SEED", "-1"),
        ("FLYWHEEL_EVAL_AUC_MARGIN", "-0.01"),
        ("FLYWHEEL_EVAL_LOG_LOSS_MARGIN", "nan"),
        ("FLYWHEEL_EVAL_ECE_MARGIN", "2"),
        ("FLYWHEEL_EVAL_CTR_MARGIN", "half a point"),
        ("FLYWHEEL_EVAL_MIN_SLICE_ROWS", "0"),
        ("FLYWHEEL_EVAL_MIN_AUC", "1.5"),
        ("FLYWHEEL_EVAL_MAX_ECE", "0"),
        ("FLYWHEEL_EVAL_ATTRIBUTION_ROWS", "-1"),
        ("FLYWHEEL_EVAL_ATTRIBUTION_ROWS", "all"),
        ("FLYWHEEL_EVAL_ATTRIBUTION_SHIFT", "0"),
        ("FLYWHEEL_EVAL_ATTRIBUTION_SHIFT", "1.5"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, bad: str) -> None:
    monkeypatch.setenv(name, bad)
    with pytest.raises(SettingsError) as error:
        get_settings()
    assert str(error.value).startswith(f"{name}={bad!r} ") and f"set e.g. {name}=" in str(error.value)
    monkeypatch.setenv(name, error.value.example)  # the suggested value is accepted
    get_settings()
