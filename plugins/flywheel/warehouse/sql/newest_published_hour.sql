{#
  newest_published_hour.sql: the newest hour build_features published.

  Identifiers: none.
  Parameters:  none.
  Output:      one row: newest (NULL before the first publication).
#}
select max(hour) as newest
from features.published_hours
