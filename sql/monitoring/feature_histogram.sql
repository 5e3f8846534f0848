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

{# Rows at or above each edge, every numeric feature in one pass: bin k is then "at or above edge k but
   not edge k+1", which is exactly "k edges <= value". Comparing each column with bound constants is a
   vectorized scan; a range join on the bins, or edges read from a joined row, is several times slower,
   and this is the query that runs every hour over the whole window. flag_type is smallint on DuckDB
   (summing smallints is several times faster there than integers) and integer on PostgreSQL (which has
   no boolean-to-smallint cast); the counts are the same. Columns are named by the feature's position
   (n1_ge_0 ...) rather than its name, which keeps them within PostgreSQL's 63-character limit. #}
numeric_at_or_above as (
    select
        {%- for name in numeric %}
        {%- set n = loop.index %}
        count("{{ name }}") as n{{ n }}_ge_0,
        {%- for k in range(1, edge_counts[name] + 1) %}
        coalesce(
            sum(
                cast("{{ name }}" >= cast(:{{ name }}__edge_{{ k }} as double precision) as {{ flag_type }})
            ),
            0
        ) as n{{ n }}_ge_{{ k }},
        {%- endfor %}
        {%- endfor %}
        count(*) as window_rows
    from current_window
),

numeric_histogram as (
    {%- for name in numeric %}
    {%- set feature_loop = loop %}
    {%- set n = loop.index %}
    {%- for k in range(0, edge_counts[name] + 1) %}
    select
        '{{ name }}' as feature,
        {{ k }} as bin,
        n{{ n }}_ge_{{ k }}{% if k < edge_counts[name] %} - n{{ n }}_ge_{{ k + 1 }}{% endif %} as bin_rows
    from numeric_at_or_above
    union all
    {%- endfor %}
    select
        '{{ name }}' as feature,
        -1 as bin,
        window_rows - n{{ n }}_ge_0 as bin_rows
    from numeric_at_or_above
    {%- if not feature_loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),
{%- endif %}
{%- for name in categorical %}
{%- set c = loop.index %}

categorical_{{ c }}_values as (
    select
        cast(current_window."{{ name }}" as varchar) as category,
        count(*) as category_rows
    from current_window
    group by cast(current_window."{{ name }}" as varchar)
),

{# A value the profile does not list (a new category) counts in the 'other' bin; NULL in bin -1. #}
categorical_{{ c }}_bins as (
    select
        v.category_rows,
        case when v.category is null then -1 else coalesce(p.bin, o.bin) end as bin
    from categorical_{{ c }}_values as v
    left join reference_profile as p
        on p.feature = '{{ name }}' and p.bin_kind = 'category' and v.category = p.category
    cross join reference_profile as o
    where o.feature = '{{ name }}' and o.bin_kind = 'other'
),
{%- endfor %}
{%- if categorical %}

categorical_histogram as (
    {%- for name in categorical %}
    select
        '{{ name }}' as feature,
        bin,
        sum(category_rows) as bin_rows
    from categorical_{{ loop.index }}_bins
    group by bin
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),
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
