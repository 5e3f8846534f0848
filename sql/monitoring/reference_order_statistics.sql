{#
  reference_order_statistics.sql: exact order statistics of each numeric feature of the reference, the two
  sorted values around each quantile (the second query of a reference profile; see reference_profile.sql).

  Identifiers: reference (a table name, or one validated select query in parentheses);
               numeric (list of column names, each with at least one non-NULL reference value).
  Parameters:  :<feature>__ranks  for each wanted order statistic (0-based position i among the feature's
                                  n non-NULL values, ascending), the fraction (i + 0.5) / n
  Output:      one row: values_<i> for the i-th numeric feature (1-based), the list of its order statistics
               in the order of :<feature>__ranks.

  percentile_disc(f) is the value at 0-based position ceil(f * n) - 1 on DuckDB and on PostgreSQL alike
  (NULLs ignored), so the fraction (i + 0.5) / n names position i exactly, far from any rounding boundary.
  Every feature is one aggregate with its whole list of fractions, all in one scan: DuckDB selects them
  without sorting whole columns (0.43 s for 10 features x 1M rows x 18 positions on 2 cores), where the
  window-function sort of all features at once that computed NumPy's quantiles before cost most of the
  ad hoc comparison's time and memory; PostgreSQL sorts each column once.
  flywheel.monitoring.quantiles turns the values into edges, exactly as NumPy's default method does.
#}
select
{%- for name in numeric %}
    percentile_disc(cast(:{{ name }}__ranks as double precision[])) within group (
        order by cast(reference_source."{{ name }}" as double precision)
    ) as values_{{ loop.index }}{{ "," if not loop.last }}
{%- endfor %}
from {{ reference.sql }} as reference_source
