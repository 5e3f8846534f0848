{#
  newest_impression.sql: how far ingest has loaded, the newest impression's timestamp (the loaded
  watermark of build_features).

  Identifiers: none.
  Parameters:  none.
  Output:      one row: newest (NULL when raw.impressions is empty).
#}
select max(event_ts) as newest
from raw.impressions
