{#
  quarantine_partition.sql:
  The quarantine copy of an interval is replaced, not appended to: a rerun of the gate, or of ingest and the
  gate on the same files, leaves one copy. The caller runs this only when the partition has rows.

  Identifiers: table, quarantine_table; column (the partition timestamp); columns (the table's columns).
  Parameters:  :start, :end, :run_id, :quarantined_at
  Output:      none (two statements).
#}
delete from {{ quarantine_table }}
where {{ column }} >= :start and {{ column }} < :end;

insert into {{ quarantine_table }} ({{ columns | join(", ") }}, validation_run_id, quarantined_at)
select
    {{ columns | join(", ") }},
    :run_id as validation_run_id,
    :quarantined_at as quarantined_at
from {{ table }}
where {{ column }} >= :start and {{ column }} < :end
