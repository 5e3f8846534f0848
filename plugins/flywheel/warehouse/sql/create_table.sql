{# Created from the Arrow schema the data arrives with, so the column list lives in one place. #}
{% if schema_name %}create schema if not exists {{ schema_name }};{% endif %}
create table if not exists {{ table }} (
{%- for name, type in columns %}
    {{ name }} {{ type }}{{ "," if not loop.last }}
{%- endfor %}
);
