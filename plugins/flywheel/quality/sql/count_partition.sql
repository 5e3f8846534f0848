{#
  count_partition.sql: how many rows a partition holds (none: nothing to set aside).

  Identifiers: table (schema.table); column (its partition timestamp).
  Parameters:  :start, :end   the partition, start <= column < end
  Output:      one row: row_count.
#}
select count(*) as row_count
from {{ table }}
where {{ column }} >= :start and {{ column }} < :end
