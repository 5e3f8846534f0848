{% test unique_combination_of_columns(model, combination_of_columns) %}
    {#- The grain of a model is often several columns (user_id, feature_ts); dbt's unique takes one.
        Written here because no dbt packages are installed (the hub is not reachable everywhere). -#}
    {%- set columns = combination_of_columns | join(', ') %}
    select
        {{ columns }},
        count(*) as n_rows
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}
