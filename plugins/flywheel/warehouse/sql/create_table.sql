{#
  create_table.sql: a table (and its schema) unless it exists, from the Arrow schema the data arrives with,
  so the column list lives in one place.

  Identifiers: table (schema.table); schema_name (its schema, or none); columns (name, SQL type) pairs.
  Parameters:  none.
  Output:      none (one or two statements).
#}
{% if schema_name %}create schema if not exists {{ schema_name }};{% endif %}
create table if not exists {{ table }} (
    {%- for name, type in columns %}
    {{ name }} {{ type }}{{ "," if not loop.last }}
    {%- endfor %}
);
