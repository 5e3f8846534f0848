{#
  delete_drift_window.sql: one model's PSI rows of one window, before they are written again. Keyed on the
  model too: the same hour measured for a new model leaves the old model's verdict on it.

  Identifiers: table (monitoring.feature_drift).
  Parameters:  :window_start, :window_end, :model_version
  Output:      none.
#}
delete from {{ table }}
where
    window_start = :window_start
    and window_end = :window_end
    and model_version = :model_version
