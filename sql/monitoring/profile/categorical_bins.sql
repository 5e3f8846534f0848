{#
  profile/categorical_bins.sql: the categorical part of reference_profile.sql (included there, not run
  alone): the common table expressions categorical_values .. categorical_profile, each followed by a comma.

  Reads: reference_rows (the reference's categorical columns as varchar), categorical and the bound
  :top_categories of reference_profile.sql.
  Output (categorical_profile): feature, kind, bin, bin_kind, lower_edge, upper_edge, category, bin_rows.
#}

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
