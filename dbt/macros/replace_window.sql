{% macro window_start(column) -%}
    {#- The first hour an incremental run rebuilds: the earlier of the model's latest hour and the start of
        the run's interval (var flywheel_interval_start), less the lookback. The lookback picks up events
        that arrive late (a click an hour after its impression); the interval start makes a rerun of an
        old, repaired hour rebuild it and every hour after it, whose 24 h and 7 d windows include it, so
        the result equals a full refresh. The lookback applies before the interval start too: a repaired
        hour's clicks and orders relabel the impressions of the hour before it.
        An empty table starts from the beginning of time. -#}
    {%- set latest = "coalesce(max(" ~ column ~ "), cast('1900-01-01' as timestamp))" -%}
    {%- set interval_start = var('flywheel_interval_start') -%}
    {%- if interval_start is not none -%}
        {#- text from --vars: quotes doubled, so it can only be a (possibly bad) timestamp -#}
        {%- set quoted = "'" ~ (interval_start | string | replace("'", "''")) ~ "'" -%}
        {%- set latest = "least(" ~ latest ~ ", cast(" ~ quoted ~ " as timestamp))" -%}
    {%- endif -%}
    (
        select {{ latest }} - interval '1 hour' * {{ var('flywheel_lookback_hours') }}
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
