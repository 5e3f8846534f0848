{#
  resolve_refused_files.sql:
  A file loaded from a landing path that ingest once refused is the repaired file: the refusal is closed,
  not deleted (the record and the quarantined copy stay as evidence).

  Identifiers: none.
  Parameters:  :table_name, :file_path (relative to the landing dir), :resolved_at, :run_id
  Output:      none.
#}
update quarantine.files
set
    resolved_at = :resolved_at,
    resolved_by_run_id = :run_id
where
    table_name = :table_name
    and file_path = :file_path
    and resolved_at is null
