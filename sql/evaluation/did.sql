{#
  did.sql: the canary's effect on an outcome per request, by difference-in-differences over a prediction
  log, with a standard error clustered by user (users come back, so their requests are not independent).

  Identifiers: log_table (a table or view, one row per request: request_id, user_id, bucket, served_at
               and the outcome column); outcome_column (a number per request: clicks, clicked 0/1, gmv);
               experiment_column (a column whose value picks one experiment's rows, or none).
  Parameters:  :before_start, :canary_start, :after_end   before = [before_start, canary_start),
                                                          after = [canary_start, after_end) on served_at
               :z            the normal quantile of the interval (1.96 for 95%)
               :experiment   the experiment_column value to keep (only with experiment_column)
  Output:      one row: estimate, std_error, lower, upper (estimate -/+ z * std_error); for each cell
               <bucket>_<period> (canary_before, canary_after, champion_before, champion_after): _mean,
               _requests, _users; canary_users, champion_users; users_in_both_buckets (must be 0).

  The log is prepared, not joined here: serving knows which clicks belong to which request, and an outcome
  may be clicks, orders or gmv. bucket is 'canary' or 'champion' (other rows are ignored) and must be the
  bucket the user's stable hash assigns, logged before the canary starts too, when everyone is served the
  champion: that is what makes "canary_before" the treated group before treatment. Rows with a NULL outcome
  are left out (coalesce in the log to count them as zero).

  Estimate: DID = (m_canary_after - m_canary_before) - (m_champion_after - m_champion_before), m the mean
  outcome per request of the cell (a 2x2 regression with an interaction gives the same number).
  Standard error: a cell mean m = S / N (S the outcomes, N the requests) is a ratio of user sums; to first
  order m - E[m] = sum over users i of (s_i - m * n_i) / N, with s_i, n_i user i's outcomes and requests in
  the cell. So DID - E[DID] = sum over users of u_i, where for a user of the bucket
      u_i = (s_i,after - m_after * n_i,after) / N_after - (s_i,before - m_before * n_i,before) / N_before
  (means and totals of that bucket; a user's before and after requests land in the same u_i, which is how
  repeated users count). Users are independent and u_i sums to exactly zero within a bucket, so
      Var(DID) = sum over buckets b of G_b * var_samp(u_i, i in b),   G_b the bucket's users,
  that is sum of u_i^2 times G_b / (G_b - 1): the cluster-robust sandwich variance of the 2x2 regression,
  with a CR1-style small-sample factor per bucket. With one request per user it is nearly the naive sum of
  s^2 / N over the four cells; users who come back make it larger when their requests move together within
  a period (measured: about twice the naive error in tests/sql/test_did.py), smaller when a lasting user
  effect cancels between before and after. Either way it is the one that keeps its 95% coverage.
#}
with

{% include "evaluation/did/user_totals.sql" %}

cells as (
    select
        bucket,
        {%- for period in ("before", "after") %}
        sum({{ period }}_outcome) / nullif(sum({{ period }}_requests), 0) as {{ period }}_mean,
        sum({{ period }}_requests) as {{ period }}_requests,
        count(case when {{ period }}_requests > 0 then 1 end) as {{ period }}_users,
        {%- endfor %}
        count(*) as bucket_users
    from user_totals
    group by bucket
),

{% include "evaluation/did/bucket_variances.sql" %}

{# Both buckets always have a row, so an empty one reads as zero requests, not as no answer at all. #}
buckets as (
    select
        b.bucket,
        {%- for period in ("before", "after") %}
        c.{{ period }}_mean,
        coalesce(c.{{ period }}_requests, 0) as {{ period }}_requests,
        coalesce(c.{{ period }}_users, 0) as {{ period }}_users,
        {%- endfor %}
        coalesce(c.bucket_users, 0) as bucket_users,
        v.variance
    from (values ('canary'), ('champion')) as b (bucket)
    left join cells as c on b.bucket = c.bucket
    left join bucket_variances as v on b.bucket = v.bucket
),

effect as (
    select
        (t.after_mean - t.before_mean) - (c.after_mean - c.before_mean) as estimate,
        sqrt(t.variance + c.variance) as std_error
    from buckets as t
    cross join buckets as c
    where t.bucket = 'canary' and c.bucket = 'champion'
),

final as (
    select
        e.estimate,
        e.std_error,
        e.estimate - cast(:z as double precision) * e.std_error as lower,
        e.estimate + cast(:z as double precision) * e.std_error as upper,
        {%- for bucket, alias in (("canary", "t"), ("champion", "c")) %}
        {%- for period in ("before", "after") %}
        {{ alias }}.{{ period }}_mean as {{ bucket }}_{{ period }}_mean,
        {{ alias }}.{{ period }}_requests as {{ bucket }}_{{ period }}_requests,
        {{ alias }}.{{ period }}_users as {{ bucket }}_{{ period }}_users,
        {%- endfor %}
        {{ alias }}.bucket_users as {{ bucket }}_users,
        {%- endfor %}
        m.users_in_both_buckets
    from effect as e
    cross join buckets as t
    cross join buckets as c
    cross join mixed_users as m
    where t.bucket = 'canary' and c.bucket = 'champion'
)

select * from final
