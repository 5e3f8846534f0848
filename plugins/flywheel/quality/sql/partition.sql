{#
  partition.sql:
  The batch GX validates: every column (hence select *). GX query assets take SQL text, not bound
  parameters, so the bounds are rendered here from datetime objects only (never from strings) as typed
  timestamp literals.

  Identifiers: table; column (its partition timestamp); start, end (datetime objects, rendered as timestamp literals: see above).
  Parameters:  none (see above).
  Output:      the table's columns, the rows of the partition.
#}
select * -- noqa: AM04
from {{ table }}
where
    {{ column }} >= timestamp '{{ start }}'
    and {{ column }} < timestamp '{{ end }}'
