{#
  published_hours.sql: the hours of features that build_features published after every gate passed.

  Identifiers: none.
  Parameters:  :start, :end   the half-open range of hours asked about
  Output:      hour (one row per published hour in [:start, :end)), ascending
#}
select hour
from features.published_hours
where hour >= :start and hour < :end
order by hour
