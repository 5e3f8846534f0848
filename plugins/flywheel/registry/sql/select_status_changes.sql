{#
  select_status_changes.sql: the history of one version, oldest move first.

  Parameters:  :version
  Output:      version, seq, from_status, to_status, reason, run_id, changed_at
#}
select
    version,
    seq,
    from_status,
    to_status,
    reason,
    run_id,
    changed_at
from registry.status_changes
where version = :version
order by seq
