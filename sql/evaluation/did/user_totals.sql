{#
  did/user_totals.sql: the per-user part of did.sql (included there, not run alone): the common table
  expressions served, user_totals and mixed_users, each followed by a comma.

  Reads: log_table, outcome_column, experiment_column and the bound :before_start, :canary_start,
  :after_end (and :experiment) of did.sql.
  Output (user_totals): user_id, bucket, before_outcome, before_requests, after_outcome, after_requests;
  (mixed_users): users_in_both_buckets.
#}
served as (
    select
        requests.user_id,
        requests.bucket,
        case when requests.served_at < :canary_start then 'before' else 'after' end as period,
        cast(requests."{{ outcome_column }}" as double precision) as outcome
    from {{ log_table }} as requests
    where
        requests.served_at >= :before_start
        and requests.served_at < :after_end
        and requests.bucket in ('canary', 'champion')
        and requests."{{ outcome_column }}" is not null
        {%- if experiment_column %}
        and requests."{{ experiment_column }}" = :experiment
        {%- endif %}
),

{# One row per user and bucket: the unit the standard error is clustered on. count(case ...) rather than
   sum(case ... 1 else 0): it is a bigint on both engines (DuckDB sums integers into a 128-bit hugeint). #}
user_totals as (
    select
        user_id,
        bucket,
        {%- for period in ("before", "after") %}
        coalesce(sum(case when period = '{{ period }}' then outcome end), 0) as {{ period }}_outcome,
        count(case when period = '{{ period }}' then 1 end) as {{ period }}_requests,
        {%- endfor %}
        count(*) as requests
    from served
    group by user_id, bucket
),

{# A user in both buckets means the bucketing was not stable: the comparison is then not of two groups. #}
mixed_users as (
    select count(*) as users_in_both_buckets
    from (
        select user_id
        from user_totals
        group by user_id
        having count(*) > 1
    ) as mixed
),
