{#
  last_retrain_request.sql: the newest retraining request detect_drift made.

  Parameters:  none
  Output:      at most one row: window_end, features (json text: feature -> PSI), run_id, requested_at
#}
select
    window_end,
    features,
    run_id,
    requested_at
from monitoring.retrain_requests
order by window_end desc
limit 1
