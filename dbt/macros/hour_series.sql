{% macro hour_series(first_hour, last_hour) -%}
    {#- Every whole hour from first_hour to last_hour inclusive, one row each, used in a select list.
        PostgreSQL's generate_series returns a set there; DuckDB's returns a list that must be unnested. -#}
    {{ return(adapter.dispatch('hour_series', 'flywheel')(first_hour, last_hour)) }}
{%- endmacro %}

{% macro default__hour_series(first_hour, last_hour) -%}
    generate_series({{ first_hour }}, {{ last_hour }}, interval '1 hour')
{%- endmacro %}

{% macro duckdb__hour_series(first_hour, last_hour) -%}
    unnest(generate_series({{ first_hour }}, {{ last_hour }}, interval '1 hour'))
{%- endmacro %}
