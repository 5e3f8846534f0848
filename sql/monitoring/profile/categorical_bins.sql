{#
  profile/categorical_bins.sql: the categorical part of reference_profile.sql that chooses the bins
  (included there, not run alone): the common table expressions categorical_values ..
  categorical_kept_totals, each followed by a comma; profile/categorical_profile.sql lists the bins.

  Reads: reference_rows (the reference's categorical columns as varchar), categorical and the bound
  :top_categories of reference_profile.sql.
  Output (categorical_kept, categorical_counts, categorical_kept_totals): the kept categories and their
  bins, and per feature its non-NULL and NULL rows and the rows of its kept categories.
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
