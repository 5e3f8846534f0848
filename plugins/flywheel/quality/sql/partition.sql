{# The batch GX validates: every column (hence select *). GX query assets take SQL text, not bound
   parameters, so the bounds are rendered here from datetime objects only (never from strings) as typed
   timestamp literals. #}
select * -- noqa: AM04
from {{ table }}
where
    {{ column }} >= timestamp '{{ start }}'
    and {{ column }} < timestamp '{{ end }}'
