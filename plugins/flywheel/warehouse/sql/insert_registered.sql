{#
  insert_registered.sql: DuckDB's bulk append, from an Arrow table registered under a view name.

  Identifiers: table (schema.table); column_names (the Arrow table's columns); registered (the view name).
  Parameters:  none.
  Output:      none.
#}
insert into {{ table }} ({{ column_names | join(", ") }})
select {{ column_names | join(", ") }}
from {{ registered }}
