{#
  ingest_quarantined_files.sql:
  Files ingest refused that belong to this interval and are still open: each is recorded against the hour
  it was filed under, so a refusal counts for that hour's gate and no other. A refusal closes when a file
  loads from the same landing path (resolved_at). Distinct paths: a file refused twice counts once.

  Identifiers: none.
  Parameters:  :table_name (without schema), :start, :end
  Output:      file_path, reason: one row per open refused file of the interval.
#}
select
    file_path,
    max(reason) as reason
from quarantine.files
where
    table_name = :table_name
    and interval_start >= :start
    and interval_end <= :end
    and resolved_at is null
group by file_path
order by file_path
