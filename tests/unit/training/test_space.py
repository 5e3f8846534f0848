"""The search space file people edit: the packaged one is valid, mistakes are named."""

from __future__ import annotations

import pytest

from flywheel.training.space import SearchSpaceError, load_search_space


def test_packaged_space_covers_the_documented_parameters() -> None:
    space = load_search_space()
    assert (space.metric, space.mode) == ("val_auc", "max")
    assert space.parameters["lr"]["type"] == "loguniform"
    assert space.parameters["optimizer"]["values"] == ["adamw", "adam", "sgd"]
    assert {"batch_size", "embedding_dim", "cross_layers", "mlp_layers", "weight_decay"} <= set(
        space.parameters
    )
    tune_space = space.to_tune()
    assert tune_space["cross_layers"].lower == 1 and tune_space["cross_layers"].upper == 4  # randint: high+1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("parameters: {lr: {type: logarithmic, low: 1, high: 2}}", "lr has type 'logarithmic'"),
        ("parameters: {lr: {type: loguniform, low: 0, high: 2}}", "lr needs 0 < low < high"),
        ("parameters: {bs: {type: choice, values: [[1, 2]]}}", "bs needs a non-empty list of plain values"),
        ("parameters: {bs: {type: int, low: 1}}", r"bs \(int\) needs high"),
        ("metric: val_auc", "non-empty 'parameters'"),
    ],
)
def test_malformed_space_files_are_refused(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(body)
    with pytest.raises(SearchSpaceError, match=message):
        load_search_space(path)
