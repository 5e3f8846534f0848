{#
  create_quarantine_table.sql:
  Created from the gated table itself, so a quarantine table always has the columns it receives
  (whatever they are: hence select *).

  Identifiers: table (the gated table); quarantine_table (its quarantine copy).
  Parameters:  none.
  Output:      none (two statements).
#}
create schema if not exists quarantine;
create table if not exists {{ quarantine_table }} as
select
    gated.*, -- noqa: AM04
    cast(null as varchar) as validation_run_id,
    cast(null as timestamp) as quarantined_at
from {{ table }} as gated
where 1 = 0
