{#
  next_ordinal.sql: the ordinal the next registered version gets (v0001 is ordinal 1).

  Parameters:  none
  Output:      ordinal (one row)
#}
select coalesce(max(ordinal), 0) + 1 as ordinal
from registry.model_versions
