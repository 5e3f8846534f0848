{#
  delete_partition.sql: a table's partition, before it is written again. A partition is a half-open time
  range, so adjacent intervals never share a row.

  Identifiers: table (schema.table); column (its timestamp).
  Parameters:  :start, :end   the partition, start <= column < end
  Output:      none.
#}
delete from {{ table }}
where {{ column }} >= :start and {{ column }} < :end
