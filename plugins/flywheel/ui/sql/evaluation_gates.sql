{#
  evaluation_gates.sql: the newest evaluation of each version and its gate's verdict, from the rows
  evaluate_model records (one per metric and slice; passed is null for a check that is reported, not gated).

  Parameters:  none
  Output:      one row per evaluated version: evaluation_id, version, baseline_version, created_at,
               gated_checks, failed_checks, failed_metrics (text, null when none failed)
#}
with

evaluations as (
    select
        evaluation_id,
        version,
        baseline_version,
        max(created_at) as created_at,
        count(passed) as gated_checks,
        sum(case when not passed then 1 else 0 end) as failed_checks,
        string_agg(
            case when not passed then metric || ' (' || slice || ')' end, ', ' order by metric, slice
        ) as failed_metrics
    from registry.evaluations
    group by evaluation_id, version, baseline_version
),

ranked as (
    select
        evaluation_id,
        version,
        baseline_version,
        created_at,
        gated_checks,
        failed_checks,
        failed_metrics,
        {# a rerun on a newer window is a newer evaluation; the page shows the one that decided last #}
        row_number() over (partition by version order by created_at desc, evaluation_id desc) as recency
    from evaluations
)

select
    evaluation_id,
    version,
    baseline_version,
    created_at,
    gated_checks,
    failed_checks,
    failed_metrics
from ranked
where recency = 1
