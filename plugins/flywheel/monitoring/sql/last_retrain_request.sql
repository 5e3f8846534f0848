{#
  last_retrain_request.sql: the end of the window of the newest retraining request (for the cooldown).

  Identifiers: table (monitoring.retrain_requests).
  Parameters:  none.
  Output:      one row: last_window_end (NULL when no request was made).
#}
select max(window_end) as last_window_end
from {{ table }}
