{#
  insert_row.sql: one row into a monitoring table, every value bound.

  The monitoring tables take a handful of rows per run. Inserting them as bound values, rather than as an
  Arrow table, keeps DuckDB from importing pandas (about 50 MB) in the hourly task.

  Identifiers: table (schema.table); columns (the column names, in order).
  Parameters:  one :<column> per column.
  Output:      none.
#}
insert into {{ table }} (
    {%- for name in columns %}
    {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
)
values (
    {%- for name in columns %}
    :{{ name }}{{ "," if not loop.last }}
    {%- endfor %}
)
