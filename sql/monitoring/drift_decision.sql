{#
  drift_decision.sql: the retrain rule for the model in service, per feature, read from monitoring.feature_drift.

  The rule: a feature drifts when its PSI against the model's reference is >= :psi_threshold in the latest
  window (the one ending at :window_end), or >= :sustained_threshold in each of the :sustained_windows
  hourly windows ending at :window_end, :window_end - 1 hour, ..., :window_end - (:sustained_windows - 1)
  hours. Only rows measured for :model_version count: a window measured against an earlier model says how
  far the world moved from that model's training data, not from the new one's, so it never counts toward
  a request for the new model (and the new model starts with no streak). The streak is in exact hours, not
  in recorded rows: an hour that was never checked (the DAG was down, the hour not published) breaks it,
  since nothing says the shift held through it. A 'no_data' window has no PSI, so it never counts towards
  either branch: an empty hour cannot start training, and it breaks a sustained run.

  Identifiers: none.
  Parameters:  :model_version        the model in service; only its rows are read
               :window_end           the end of the window being decided
               :psi_threshold        PSI that fires on its own (0.2)
               :sustained_threshold  PSI that fires when held (0.1)
               :sustained_windows    for how many consecutive hourly windows (2)
  Output:      one row per feature recorded for :model_version up to :window_end: feature, latest_psi
               (NULL when the window ending at :window_end is not recorded or had no data), latest_status
               ('ok' | 'no_data' | 'missing'), windows_over_sustained (of the :sustained_windows hourly
               windows ending at :window_end, those present, 'ok' and over :sustained_threshold),
               over_threshold, sustained (booleans), fire (either).
#}
with

model_windows as (
    {# compute_window_drift keeps one row per (window, model, feature); of windows with the same end and
       different starts (an ad hoc longer window), the latest start (the shortest window) speaks for it. #}
    select
        feature,
        window_end,
        psi,
        status,
        row_number() over (partition by feature, window_end order by window_start desc) as superseded
    from monitoring.feature_drift
    where model_version = :model_version and window_end <= :window_end
),

streak_hours as (
    select cast(:window_end as timestamp) - streak.hours_back * interval '1 hour' as window_end
    from generate_series(0, :sustained_windows - 1) as streak (hours_back)
),

per_feature as (
    select
        model_windows.feature,
        max(
            case
                when model_windows.window_end = :window_end and model_windows.status = 'ok'
                    then model_windows.psi
            end
        ) as latest_psi,
        max(case when model_windows.window_end = :window_end then model_windows.status end) as latest_status,
        sum(
            case
                when
                    streak_hours.window_end is not null
                    and model_windows.status = 'ok'
                    and model_windows.psi >= :sustained_threshold
                    then 1
                else 0
            end
        ) as windows_over_sustained
    from model_windows
    left join streak_hours on model_windows.window_end = streak_hours.window_end
    where model_windows.superseded = 1
    group by model_windows.feature
),

final as (
    select
        feature,
        latest_psi,
        cast(windows_over_sustained as integer) as windows_over_sustained,
        coalesce(latest_status, 'missing') as latest_status,
        coalesce(latest_psi >= :psi_threshold, false) as over_threshold,
        {# Every one of the hours present and over: one row per hour and feature, so the count is exact. #}
        windows_over_sustained >= :sustained_windows as sustained
    from per_feature
)

select
    feature,
    latest_psi,
    latest_status,
    windows_over_sustained,
    over_threshold,
    sustained,
    over_threshold or sustained as fire
from final
order by feature
