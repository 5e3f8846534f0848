{#
  model_versions.sql: the newest model versions, newest first.

  Parameters:  :limit   how many versions the page lists
  Output:      version, parent_version, data_version, the training window, metrics (json text), status,
               run_id (the train_model run that registered it), created_at, updated_at
#}
select
    version,
    parent_version,
    data_version,
    window_start,
    window_end,
    metrics,
    status,
    run_id,
    created_at,
    updated_at
from registry.model_versions
order by ordinal desc
limit :limit
