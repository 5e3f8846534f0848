{#
  did/bucket_variances.sql: the standard error's part of did.sql (included there, not run alone): the
  common table expressions contributions and bucket_variances, each followed by a comma.

  Reads: user_totals and cells of did.sql.
  Output (contributions): bucket, contribution (u_i of did.sql's derivation, one row per user);
  (bucket_variances): bucket, variance (G_b * var_samp(u_i), the bucket's share of Var(DID)).
#}
contributions as (
    select
        u.bucket,
        (u.after_outcome - c.after_mean * u.after_requests) / nullif(c.after_requests, 0)
        - (u.before_outcome - c.before_mean * u.before_requests) / nullif(c.before_requests, 0)
        as contribution
    from user_totals as u
    inner join cells as c on u.bucket = c.bucket
),

{# var_samp, not a mean of squares: it is NULL for a bucket of one user, whose variance cannot be told. #}
bucket_variances as (
    select
        bucket,
        count(*) * var_samp(contribution) as variance
    from contributions
    group by bucket
),
