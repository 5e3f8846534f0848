{#
  demo_retrain_requests.sql: every retraining request detect_drift made, oldest window first.

  Parameters:  none
  Output:      window_end, features (json text: feature -> PSI), run_id, requested_at
#}
select
    window_end,
    features,
    run_id,
    requested_at
from monitoring.retrain_requests
order by window_end
