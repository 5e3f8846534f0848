{#
  profile/categorical_profile.sql: the bins of each categorical feature, from profile/categorical_bins.sql
  (both included in reference_profile.sql, not run alone): the common table expression categorical_profile,
  followed by a comma. Bins 0 .. kept-1 are the kept categories, bin <kept> is 'other', bin -1 NULL.

  Reads: categorical_kept, categorical_counts, categorical_kept_totals (profile/categorical_bins.sql).
  Output (categorical_profile): feature, kind, bin, bin_kind, lower_edge, upper_edge, category, bin_rows.
#}

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
