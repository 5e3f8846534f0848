{#
  table_exists.sql: whether a table exists, from the information schema both engines keep.

  Identifiers: none.
  Parameters:  :schema, :name
  Output:      one row (table_name) when it exists, none otherwise.
#}
select table_name
from information_schema.tables
where table_schema = :schema and table_name = :name
