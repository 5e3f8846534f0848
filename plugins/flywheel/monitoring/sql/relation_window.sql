{#
  relation_window.sql: the rows of a relation in one half-open time window, the window's bounds bound
  (a profile's reference is its model's training window of marts.training_examples).

  Identifiers: relation (a table name, or one validated select query in parentheses);
               timestamp_column (a column of it); role (names the bounds: reference -> :reference_start).
  Parameters:  :<role>_start, :<role>_end   the window, start <= timestamp_column < end
  Output:      the relation's columns, the rows of the window.
#}
select windowed.*  -- noqa: AM04
from {{ relation.sql }} as windowed
where
    windowed."{{ timestamp_column }}" >= :{{ role }}_start
    and windowed."{{ timestamp_column }}" < :{{ role }}_end
