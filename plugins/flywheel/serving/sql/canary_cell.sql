{#
  canary_cell.sql: one bucket of canary_log during the step: requests, observed CTR (clicks per shown item),
  predicted CTR (mean score of the shown items), expected clicks (sum of those scores).
  Parameters: :step_start, :bucket ('canary' or 'champion').
#}
select
    count(*) as requests,
    sum(clicks) / nullif(sum(items), 0) as observed_ctr,
    sum(predicted * items) / nullif(sum(items), 0) as predicted_ctr,
    sum(predicted * items) as expected_clicks
from canary_log
where served_at >= :step_start and bucket = :bucket
