{#
  insert_evaluation.sql: one metric of one slice of an evaluation.

  Parameters:  :evaluation_id, :version, :baseline_version (null: no champion compared against), :metric,
               :slice, :value, :lower, :upper (null: no interval), :passed (null: no gate), :detail (json
               text), :now
  Output:      one row in registry.evaluations
#}
insert into registry.evaluations (
    evaluation_id,
    version,
    baseline_version,
    metric,
    slice,
    value,
    lower,
    upper,
    passed,
    detail,
    created_at
)
values (
    :evaluation_id,
    :version,
    :baseline_version,
    :metric,
    :slice,
    :value,
    :lower,
    :upper,
    :passed,
    :detail,
    :now
)
