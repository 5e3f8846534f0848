{#
  existing_tables.sql: which tables of the registry and monitoring schemas exist yet. A stage creates its
  tables the first time it runs, so on a fresh home the page shows empty sections instead of failing.

  Parameters:  none
  Output:      one row per table, table_name as schema.table
#}
select info.table_schema || '.' || info.table_name as table_name
from information_schema.tables as info
where info.table_schema in ('registry', 'monitoring')
