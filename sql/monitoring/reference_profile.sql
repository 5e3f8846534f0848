{#
  reference_profile.sql: the bins of each feature and the share of reference rows in each, computed once
  when a model is trained so that the hourly drift check only scans the current window.

  Identifiers: reference (a table name, or one validated select query in parentheses);
               numeric, categorical (lists of column names).
  Parameters:  :fractions       the quantiles that become numeric bin edges, 1/B .. (B-1)/B for B bins
               :top_categories  how many of the most frequent categories get a bin of their own (50)
  Output:      feature, kind ('numeric' | 'categorical'), bin, bin_kind ('range' | 'category' | 'other' |
               'null'), lower_edge, upper_edge (range bins: lower <= value < upper, NULL = unbounded),
               category, bin_rows, reference_rows, share (bin_rows / reference_rows, NULLs included).

  Numeric bin k holds the values with exactly k edges <= value; edges are the reference's quantiles with
  linear interpolation (exactly as NumPy's default computes them), duplicates removed. Categorical bins are numbered by frequency
  (ties by value, byte order); 'other' gathers the rest. Bin -1 holds NULLs. Every bin is listed, even an
  empty one, so the current window can be compared bin by bin.
#}
with

reference_rows as (
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

{# Long format (one row per feature and value) so every step below is one query for all features. #}
numeric_values as (
    {%- for name in numeric %}
    select
        '{{ name }}' as feature,
        "{{ name }}" as feature_value
    from reference_rows
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

{# The quantiles, as NumPy's default ('linear') computes them, operation for operation, so that the edges
   are the same doubles on DuckDB, on PostgreSQL and in NumPy. (quantile_cont and percentile_cont also
   interpolate linearly, but round differently: each differs from NumPy by one ulp on some edges.) For the
   q-th quantile of n sorted values: h = (n - 1) * q; a, b = the values at positions floor(h) and
   floor(h) + 1 (both the last one when h >= n - 1); t = h - floor(h); the quantile is a + (b - a) * t,
   or b - (b - a) * (1 - t) when t >= 0.5. #}
numeric_sorted as (
    select
        feature,
        feature_value,
        row_number() over (partition by feature order by feature_value) - 1 as sorted_position,
        count(*) over (partition by feature) as non_null_rows
    from numeric_values
    where feature_value is not null
),

quantile_positions as (
    select distinct
        s.feature,
        s.non_null_rows,
        (s.non_null_rows - 1) * q.fraction as virtual_index
    from numeric_sorted as s
    cross join unnest(cast(:fractions as double precision[])) as q (fraction)
    where s.sorted_position = 0
),

quantile_neighbours as (
    select
        feature,
        virtual_index - floor(virtual_index) as t,
        case
            when virtual_index >= non_null_rows - 1 then non_null_rows - 1
            else cast(floor(virtual_index) as bigint)
        end as lower_position,
        case
            when virtual_index >= non_null_rows - 1 then non_null_rows - 1
            else cast(floor(virtual_index) as bigint) + 1
        end as upper_position
    from quantile_positions
),

numeric_edges as (
    select
        feature,
        edge,
        cast(row_number() over (partition by feature order by edge) as integer) as bin
    from (
        select distinct
            n.feature,
            case
                when n.t >= 0.5 then b.feature_value - (b.feature_value - a.feature_value) * (1 - n.t)
                else a.feature_value + (b.feature_value - a.feature_value) * n.t
            end as edge
        from quantile_neighbours as n
        inner join numeric_sorted as a on n.feature = a.feature and n.lower_position = a.sorted_position
        inner join numeric_sorted as b on n.feature = b.feature and n.upper_position = b.sorted_position
    ) as distinct_edges
),

numeric_bins as (
    select
        feature,
        0 as bin,
        cast(null as double precision) as lower_edge,
        edge as upper_edge
    from numeric_edges
    where bin = 1
    union all
    select
        feature,
        bin,
        edge as lower_edge,
        lead(edge) over (partition by feature order by bin) as upper_edge
    from numeric_edges
    union all
    {# A feature that is NULL in every reference row has no edges: one bin for any value. #}
    select
        feature,
        0 as bin,
        cast(null as double precision) as lower_edge,
        cast(null as double precision) as upper_edge
    from numeric_values
    where numeric_values.feature not in (select e.feature from numeric_edges as e)
    group by numeric_values.feature
),

{# Rows in bin k = rows >= edge k minus rows >= edge k+1: exact integer counts, one join for all bins. #}
numeric_at_or_above as (
    select
        e.feature,
        e.bin,
        count(*) as rows_at_or_above
    from numeric_values as v
    inner join numeric_edges as e on v.feature = e.feature and v.feature_value >= e.edge
    group by e.feature, e.bin
),

numeric_counts as (
    select
        feature,
        count(feature_value) as non_null_rows,
        count(*) - count(feature_value) as null_rows
    from numeric_values
    group by feature
),

numeric_profile as (
    select
        b.feature,
        'numeric' as kind,
        b.bin,
        'range' as bin_kind,
        b.lower_edge,
        b.upper_edge,
        cast(null as varchar) as category,
        case when b.bin = 0 then c.non_null_rows else coalesce(here.rows_at_or_above, 0) end
        - coalesce(above.rows_at_or_above, 0) as bin_rows
    from numeric_bins as b
    inner join numeric_counts as c on b.feature = c.feature
    left join numeric_at_or_above as here on b.feature = here.feature and b.bin = here.bin
    left join numeric_at_or_above as above on b.feature = above.feature and b.bin + 1 = above.bin
    union all
    select
        feature,
        'numeric' as kind,
        -1 as bin,
        'null' as bin_kind,
        cast(null as double precision) as lower_edge,
        cast(null as double precision) as upper_edge,
        cast(null as varchar) as category,
        null_rows as bin_rows
    from numeric_counts
),
{%- endif %}
{%- if categorical %}

categorical_values as (
    {%- for name in categorical %}
    select
        '{{ name }}' as feature,
        "{{ name }}" as category
    from reference_rows
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

categorical_counts as (
    select
        feature,
        count(category) as non_null_rows,
        count(*) - count(category) as null_rows
    from categorical_values
    group by feature
),

{# collate "C" orders ties by bytes on both engines (and as Python sorts str), whatever the locale. #}
categorical_ranked as (
    select
        feature,
        category,
        category_rows,
        cast(
            row_number() over (
                partition by feature
                order by category_rows desc, category collate "C"  -- noqa: RF06
            ) - 1 as integer
        ) as bin
    from (
        select
            feature,
            category,
            count(*) as category_rows
        from categorical_values
        where category is not null
        group by feature, category
    ) as category_counts
),

categorical_kept as (
    select
        feature,
        category,
        category_rows,
        bin
    from categorical_ranked
    where bin < :top_categories
),

categorical_kept_totals as (
    select
        feature,
        count(*) as kept_categories,
        sum(category_rows) as kept_rows
    from categorical_kept
    group by feature
),

categorical_profile as (
    select
        feature,
        'categorical' as kind,
        bin,
        'category' as bin_kind,
        cast(null as double precision) as lower_edge,
        cast(null as double precision) as upper_edge,
        category,
        category_rows as bin_rows
    from categorical_kept
    union all
    select
        c.feature,
        'categorical' as kind,
        cast(coalesce(k.kept_categories, 0) as integer) as bin,
        'other' as bin_kind,
        cast(null as double precision) as lower_edge,
        cast(null as double precision) as upper_edge,
        cast(null as varchar) as category,
        c.non_null_rows - coalesce(k.kept_rows, 0) as bin_rows
    from categorical_counts as c
    left join categorical_kept_totals as k on c.feature = k.feature
    union all
    select
        feature,
        'categorical' as kind,
        -1 as bin,
        'null' as bin_kind,
        cast(null as double precision) as lower_edge,
        cast(null as double precision) as upper_edge,
        cast(null as varchar) as category,
        null_rows as bin_rows
    from categorical_counts
),
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
