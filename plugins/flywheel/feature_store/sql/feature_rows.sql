{#
  feature_rows.sql:
  Snapshots of one feature mart for Feast's Parquet mirror; columns come from the feature view's schema,
  so a mart column the view does not declare never reaches the feature store.

  Identifiers: table (a feature mart); columns (the feature view's columns); timestamp_column.
  Parameters:  :start, :end   snapshots with start <= timestamp_column < end
  Output:      columns, ordered by timestamp_column then the first column.
#}
select
    {{ columns | join(",\n    ") }}
from {{ table }}
where
    {{ timestamp_column }} >= :start
    and {{ timestamp_column }} < :end
order by {{ timestamp_column }}, {{ columns[0] }}
