{#
  reference_profile.sql: the bins of each feature and the share of reference rows in each, computed once
  when a model is trained so that the hourly drift check only scans the current window (and on the fly by
  the psi CLI, included in feature_histogram.sql).

  Identifiers: reference (a table name, or one validated select query in parentheses);
               numeric, categorical (lists of column names);
               edge_counts (distinct edges per numeric feature, at most B - 1 for B bins).
  Parameters:  :<feature>__edge_<k>  numeric feature's k-th edge, k = 1 .. edge_counts[feature], ascending
               :top_categories       how many of the most frequent categories get a bin of their own (50)
  Output:      feature, kind ('numeric' | 'categorical'), bin, bin_kind ('range' | 'category' | 'other' |
               'null'), lower_edge, upper_edge (range bins: lower <= value < upper, NULL = unbounded),
               category, bin_rows, reference_rows, share (bin_rows / reference_rows, NULLs included).

  A profile is three queries: reference_counts.sql (rows per feature), reference_order_statistics.sql
  (the two sorted values around each quantile) and this one. The edges are the reference's quantiles at
  1/B .. (B-1)/B with linear interpolation, exactly as NumPy's default computes them, duplicates removed
  (flywheel.monitoring.quantiles); they arrive here as bound parameters, so numeric bins are counted by
  comparing each column with constants in one scan, as feature_histogram.sql counts the window.
  Numeric bin k holds the values with exactly k edges <= value. Categorical bins are numbered by
  frequency (ties by value, byte order); 'other' gathers the rest. Bin -1 holds NULLs. Every bin is
  listed, even an empty one, so the current window can be compared bin by bin.
#}
with

{# Not materialized: each part below streams the columns it reads instead of sharing a copy of all. #}
reference_rows as not materialized (
    select
        {%- for name in numeric %}
        cast(reference_source."{{ name }}" as double precision) as "{{ name }}",
        {%- endfor %}
        {%- for name in categorical %}
        cast(reference_source."{{ name }}" as varchar) as "{{ name }}",
        {%- endfor %}
        1 as counted
    from {{ reference.sql }} as reference_source
),

reference_total as (
    select count(*) as reference_rows
    from reference_rows
),
{%- if numeric %}
{% include "monitoring/profile/numeric_bins.sql" %}
{%- endif %}
{%- if categorical %}
{% include "monitoring/profile/categorical_bins.sql" %}
{% include "monitoring/profile/categorical_profile.sql" %}
{%- endif %}

profile_bins as (
    {%- if numeric %}
    select * from numeric_profile
    {%- endif %}
    {%- if numeric and categorical %}
    union all
    {%- endif %}
    {%- if categorical %}
    select * from categorical_profile
    {%- endif %}
),

final as (
    select
        b.feature,
        b.kind,
        cast(b.bin as integer) as bin,
        b.bin_kind,
        b.lower_edge,
        b.upper_edge,
        b.category,
        cast(b.bin_rows as bigint) as bin_rows,
        t.reference_rows,
        cast(b.bin_rows as double precision) / nullif(t.reference_rows, 0) as share  -- noqa: RF04
    from profile_bins as b
    cross join reference_total as t
)

select * from final
