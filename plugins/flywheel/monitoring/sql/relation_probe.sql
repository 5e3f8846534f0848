{#
  relation_probe.sql: look at a relation without reading it (the psi CLI's checks before any work).

  Identifiers: relation (a table name, or one validated select query in parentheses);
               rows (false: no rows, just the column names; true: at most one row, to tell empty from not).
  Parameters:  none.
  Output:      rows=false: the relation's columns, zero rows; rows=true: column present, 0 or 1 row.
#}
{#- Any row will do, and the probe must not care which: hence no order by, and the unused alias that
    PostgreSQL requires of a subquery. #}
{%- if rows %}
select 1 as present
from {{ relation.sql }} as probe  -- noqa: AL05
limit 1  -- noqa: AM09
{%- else %}
select probe.*  -- noqa: AM04
from {{ relation.sql }} as probe
limit 0  -- noqa: AM09
{%- endif %}
