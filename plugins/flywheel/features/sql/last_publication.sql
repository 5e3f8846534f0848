{#
  last_publication.sql: the newest interval build_features published, and when its inputs were resolved
  (the published watermark; the next run starts from here).

  Identifiers: table (features.publications).
  Parameters:  none.
  Output:      at most one row: interval_end, resolved_at.
#}
select
    interval_end,
    resolved_at
from {{ table }}
order by interval_end desc
limit 1
