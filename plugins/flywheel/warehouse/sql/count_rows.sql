{#
  count_rows.sql: how many rows a table holds (the demo's summary).

  Identifiers: table (schema.table).
  Parameters:  none.
  Output:      one row: n.
#}
select count(*) as n
from {{ table }}
