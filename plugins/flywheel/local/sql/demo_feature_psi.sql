{#
  demo_feature_psi.sql: PSI per feature and hourly window that detect_drift recorded, for the demo's summary.

  A window measured more than once (two runs, or two models in service) shows its highest PSI: the summary
  reports peaks.

  Parameters:  none
  Output:      feature, window_end, psi (windows without data left out), ordered by feature and window
#}
select
    feature,
    window_end,
    max(psi) as psi
from monitoring.feature_drift
where psi is not null
group by feature, window_end
order by feature, window_end
