{#
  feature_histogram.sql: the current window's rows counted into the reference profile's bins, beside the
  reference share of each bin (the input of psi.sql).

  Identifiers: current (a table name, or one validated select query in parentheses);
               numeric, categorical (lists of column names); edge_counts (distinct edges per numeric
               feature, at most B - 1 for B bins);
               timestamp_column (a column, or none when the relation is already the window);
               flag_type (the integer type a comparison is counted as: smallint | integer);
               reference (none: read the stored profile; a relation: profile it on the fly with
               reference_profile.sql, as the psi CLI does).
  Parameters:  :profile_id                  the stored profile (monitoring.reference_profiles)
               :<feature>__edge_<k>         numeric feature's k-th edge, k = 1 .. edge_counts[feature]
               :window_start, :window_end   the window, start <= timestamp_column < end (with a timestamp)
               and reference_profile.sql's parameters when profiling on the fly.
  Output:      feature, kind, bin, bin_kind, lower_edge, upper_edge, category, reference_share,
               current_rows (rows of the window in the bin), window_rows (all rows of the window),
               current_share (current_rows / window_rows, NULL for an empty window).

  A value's bin is the number of the profile's edges <= value; NULLs are bin -1. Numeric edges arrive as
  bound parameters (the caller reads them from the profile), so each comparison is against a constant.
  The counting is in histogram/numeric_bins.sql and histogram/categorical_bins.sql, included below.
#}
with

reference_profile as (
    {%- if reference %}
    {% include "monitoring/reference_profile.sql" %}
    {%- else %}
    select
        feature,
        kind,
        bin,
        bin_kind,
        lower_edge,
        upper_edge,
        category,
        share
    from monitoring.reference_profiles
    where profile_id = :profile_id
    {%- endif %}
),

{# Not materialized: the branches below stream the columns they need instead of sharing a copy of all. #}
current_window as not materialized (
    select
    {%- for name in numeric + categorical %}
        current_source."{{ name }}"{{ "," if not loop.last }}
    {%- endfor %}
    from {{ current.sql }} as current_source
    {%- if timestamp_column %}
    where
        current_source."{{ timestamp_column }}" >= :window_start
        and current_source."{{ timestamp_column }}" < :window_end
    {%- endif %}
),

window_total as (
    select count(*) as window_rows
    from current_window
),
{%- if numeric %}
{% include "monitoring/histogram/numeric_bins.sql" %}
{%- endif %}
{%- if categorical %}
{% include "monitoring/histogram/categorical_bins.sql" %}
{%- endif %}

current_histogram as (
    {%- if numeric %}
    select * from numeric_histogram
    {%- endif %}
    {%- if numeric and categorical %}
    union all
    {%- endif %}
    {%- if categorical %}
    select * from categorical_histogram
    {%- endif %}
),

final as (
    select
        p.feature,
        p.kind,
        p.bin,
        p.bin_kind,
        p.lower_edge,
        p.upper_edge,
        p.category,
        p.share as reference_share,
        cast(coalesce(h.bin_rows, 0) as bigint) as current_rows,
        w.window_rows,
        cast(coalesce(h.bin_rows, 0) as double precision) / nullif(w.window_rows, 0) as current_share
    from reference_profile as p
    cross join window_total as w
    left join current_histogram as h on p.feature = h.feature and p.bin = h.bin
    where
        p.feature in (
            {%- for name in numeric + categorical %}
            '{{ name }}'{{ "," if not loop.last }}
            {%- endfor %}
        )
)

select * from final
