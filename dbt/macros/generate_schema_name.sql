{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Other stages (Great Expectations, Feast, monitoring) read marts.user_features by that exact name,
        so a folder's schema is used as written instead of dbt's default "<target schema>_<schema>". -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
