{# Snapshots of one feature mart for Feast's Parquet mirror; columns come from the feature view's schema,
   so a mart column the view does not declare never reaches the feature store. #}
select
    {{ columns | join(",\n    ") }}
from {{ table }}
where
    {{ timestamp_column }} >= :start
    and {{ timestamp_column }} < :end
order by {{ timestamp_column }}, {{ columns[0] }}
