{#
  delete_retrain_request.sql: the request for one window, before it is recorded again (a rerun).

  Identifiers: table (monitoring.retrain_requests).
  Parameters:  :window_end
  Output:      none.
#}
delete from {{ table }}
where window_end = :window_end
