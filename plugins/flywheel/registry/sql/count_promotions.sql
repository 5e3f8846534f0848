{#
  count_promotions.sql: how many times a version became champion (all versions, or one with by_version).
  Zero means the loop still runs before evaluation and serving: in_service falls back to the newest model.

  Flags:       by_version   only the promotions of :version
  Parameters:  :version with by_version
  Output:      promotions (one row)
#}
select count(*) as promotions
from registry.status_changes
where
    to_status = 'champion'
    {%- if by_version | default(false) %}
        and version = :version
    {%- endif %}
