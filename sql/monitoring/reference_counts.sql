{#
  reference_counts.sql: how many reference rows there are, and how many of them hold a value of each
  numeric feature (the first of the three queries of a reference profile; see reference_profile.sql).

  Identifiers: reference (a table name, or one validated select query in parentheses);
               numeric (list of column names).
  Parameters:  none.
  Output:      one row: reference_rows, and non_null_<i> for the i-th numeric feature (1-based), named by
               position so that long feature names stay within PostgreSQL's 63-character limit.

  The counts fix which sorted values each quantile lies between (NumPy's positions depend on them), so
  they are read before the order statistics: one scan without sorting.
#}
select
    {%- for name in numeric %}
    count(cast(reference_source."{{ name }}" as double precision)) as non_null_{{ loop.index }},
    {%- endfor %}
    count(*) as reference_rows
from {{ reference.sql }} as reference_source
