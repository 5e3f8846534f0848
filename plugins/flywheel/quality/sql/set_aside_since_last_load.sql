{#
  set_aside_since_last_load.sql:
  The latest failed validation that moved rows of this interval out of its raw table, if ingest has not
  loaded the interval since: the partition is then empty because a gate emptied it, not because nothing
  arrived, and a retry must not pass it. raw.loads holds one row per table and hour (its latest load);
  without it (a warehouse loaded before it existed) every set-aside counts until ingest loads again.

  Identifiers: with_loads (whether raw.loads exists).
  Parameters:  :suite, :table_name (without schema), :start, :end
  Output:      at most one row: run_id, validated_at, rows_quarantined.
#}
with last_load as (
    {%- if with_loads %}
        select max(loads.loaded_at) as loaded_at
        from raw.loads as loads
        where
            loads.table_name = :table_name
            and loads.hour_start >= :start
            and loads.hour_start < :end
    {%- else %}
        select cast(null as timestamp) as loaded_at
    {%- endif %}
)

select
    validations.run_id,
    validations.validated_at,
    validations.rows_quarantined
from quarantine.validations as validations
cross join last_load
where
    validations.suite = :suite
    and validations.interval_start < :end
    and validations.interval_end > :start
    and validations.rows_quarantined > 0
    and (last_load.loaded_at is null or validations.validated_at > last_load.loaded_at)
order by validations.validated_at desc
limit 1
