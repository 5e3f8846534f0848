{#
  feature_psi.sql: PSI per feature and hourly window over the newest :hours hours that detect_drift recorded.

  One point per feature and window end: a window measured for two models (the champion changed) shows the
  newer model's, and of windows with the same end the shortest (the latest start), as the drift rule reads
  them (sql/monitoring/drift_decision.sql).

  Parameters:  :hours   how far back from the newest recorded window
  Output:      feature, window_end, psi (null for a window without data), status, model_version
#}
with

newest as (
    select max(window_end) as window_end
    from monitoring.feature_drift
),

points as (
    select
        feature,
        window_end,
        psi,
        status,
        model_version,
        row_number() over (
            partition by feature, window_end order by model_version desc, window_start desc
        ) as superseded
    from monitoring.feature_drift
)

select
    points.feature,
    points.window_end,
    points.psi,
    points.status,
    points.model_version
from points
cross join newest
where
    points.superseded = 1
    and points.window_end > newest.window_end - cast(:hours as integer) * interval '1 hour'
order by points.feature, points.window_end
