{#
  select_evaluations.sql: every evaluation row of one version, oldest evaluation first.

  Parameters:  :version
  Output:      every column of registry.evaluations
#}
select
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
from registry.evaluations
where version = :version
order by created_at, evaluation_id, metric, slice
