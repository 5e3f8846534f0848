{% macro window_start(column) -%}
    {#- The first hour an incremental run rebuilds: the model's latest hour less the lookback, so events
        that arrive late (a click an hour after its impression, a re-ingested hour) are picked up.
        An empty table starts from the beginning of time. -#}
    (
        select
            coalesce(max({{ column }}), cast('1900-01-01' as timestamp))
            - interval '1 hour' * {{ var('flywheel_lookback_hours') }}
        from {{ this }}
    )
{%- endmacro %}

{% macro get_incremental_replace_window_sql(arg_dict) -%}
    {#- Replace every row from window_start on with the rows the model just computed for that window.
        Unlike delete+insert on a key, this also removes rows that should no longer exist (an entity
        whose only event was re-ingested away), so an incremental run equals a full refresh. -#}
    {%- set column = config.get('window_column') -%}
    {%- if not column -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'replace_window' needs the config window_column: the hour column the "
            ~ "model filters with window_start() (set it in dbt_project.yml or the model's config)"
        ) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ column }} >= {{ window_start(column) }};

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
