{#
  drift_decision.sql: the retrain rule, per feature, read from monitoring.feature_drift.

  The rule: a feature drifts when its PSI is >= :psi_threshold in the latest window (the one ending at
  :window_end), or >= :sustained_threshold in each of the last :sustained_windows windows up to it.
  A 'no_data' window has no PSI, so it never counts towards either: an empty hour cannot start training,
  and it breaks a sustained run.

  Identifiers: none.
  Parameters:  :window_end           the end of the window being decided
               :psi_threshold        PSI that fires on its own (0.2)
               :sustained_threshold  PSI that fires when held (0.1)
               :sustained_windows    for how many consecutive windows (2)
  Output:      one row per feature recorded up to :window_end: feature, latest_psi (NULL when the window
               ending at :window_end is not recorded or had no data), latest_status ('ok' | 'no_data' |
               'missing'), windows_over_sustained (of the last :sustained_windows), over_threshold,
               sustained (booleans), fire (either).
#}
with

recent as (
    select
        feature,
        window_end,
        psi,
        status,
        row_number() over (partition by feature order by window_end desc, window_start desc) as recency
    from monitoring.feature_drift
    where window_end <= :window_end
),

per_feature as (
    select
        feature,
        max(case when recency = 1 and window_end = :window_end and status = 'ok' then psi end) as latest_psi,
        max(case when recency = 1 and window_end = :window_end then status end) as latest_status,
        sum(
            case
                when recency <= :sustained_windows and status = 'ok' and psi >= :sustained_threshold then 1
                else 0
            end
        ) as windows_over_sustained
    from recent
    group by feature
),

final as (
    select
        feature,
        latest_psi,
        cast(windows_over_sustained as integer) as windows_over_sustained,
        coalesce(latest_status, 'missing') as latest_status,
        coalesce(latest_psi >= :psi_threshold, false) as over_threshold,
        latest_psi is not null and windows_over_sustained >= :sustained_windows as sustained
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
