{#
  delete_performance_window.sql: one window's online performance row, before it is written again.

  Identifiers: table (monitoring.online_performance).
  Parameters:  :window_start, :window_end
  Output:      none.
#}
delete from {{ table }}
where window_start = :window_start and window_end = :window_end
