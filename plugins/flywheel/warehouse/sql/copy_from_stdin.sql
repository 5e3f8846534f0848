{#
  copy_from_stdin.sql: PostgreSQL's bulk append, CSV rows streamed by the client (every value quoted, so
  NULL and '' stay distinct).

  Identifiers: table (schema.table); column_names (the Arrow table's column names).
  Parameters:  none (the rows arrive on the COPY stream).
  Output:      none.
#}
copy {{ table }} ({{ column_names | join(", ") }}) from stdin with (format csv)
