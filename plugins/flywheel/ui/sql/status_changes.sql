{#
  status_changes.sql: the lifecycle history of the newest versions, each version's moves in order.

  Parameters:  :limit   how many versions the page lists (the same as model_versions.sql)
  Output:      version, seq, from_status, to_status, reason, run_id (the DAG run that moved it), changed_at
#}
with

listed as (
    select version
    from registry.model_versions
    order by ordinal desc
    limit :limit
)

select
    changes.version,
    changes.seq,
    changes.from_status,
    changes.to_status,
    changes.reason,
    changes.run_id,
    changes.changed_at
from registry.status_changes as changes
inner join listed on changes.version = listed.version
order by changes.version, changes.seq
