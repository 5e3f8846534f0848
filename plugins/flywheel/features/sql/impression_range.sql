{#
  impression_range.sql: how far ingest has loaded, the oldest and newest impression's timestamps (the
  loaded watermarks of build_features).

  Identifiers: none.
  Parameters:  none.
  Output:      one row: oldest, newest (both NULL when raw.impressions is empty).
#}
select
    min(event_ts) as oldest,
    max(event_ts) as newest
from raw.impressions
