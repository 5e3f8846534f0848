{#
  histogram/categorical_bins.sql: the categorical part of feature_histogram.sql (included there, not run
  alone): per categorical feature categorical_<c>_values and categorical_<c>_bins, then
  categorical_histogram, each followed by a comma.

  Reads: current_window (the window's rows), reference_profile (the profile's bins) and categorical of
  feature_histogram.sql.
  Output (categorical_histogram): feature, bin, bin_rows.
#}
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
