{#
  latest_drift_window.sql: the newest window detect_drift measured, and the model it measured it for.

  Parameters:  none
  Output:      at most one row: window_end, model_version
#}
select
    window_end,
    model_version
from monitoring.feature_drift
order by window_end desc, model_version desc
limit 1
