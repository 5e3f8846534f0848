{#
  table_columns.sql: a table's columns in order (the quarantine copy lists them explicitly).

  Identifiers: none.
  Parameters:  :schema, :name
  Output:      column_name, one row per column, in the table's order.
#}
select column_name
from information_schema.columns
where table_schema = :schema and table_name = :name
order by ordinal_position
