{#
  insert_status_change.sql: append one move to a version's history, numbered after its last one.

  Parameters:  :version, :from_status (null at registration), :to_status, :reason, :run_id, :now
  Output:      one row in registry.status_changes
#}
insert into registry.status_changes (version, seq, from_status, to_status, reason, run_id, changed_at)
select
    :version as version,  -- noqa: RF04
    coalesce(max(seq), 0) + 1 as seq,
    :from_status as from_status,
    :to_status as to_status,
    :reason as reason,
    :run_id as run_id,
    :now as changed_at
from registry.status_changes
where version = :version
