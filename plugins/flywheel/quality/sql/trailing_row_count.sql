{#
  trailing_row_count.sql:
  Rows and the hours that had any, before the interval: the average counts only hours with data, so a table
  younger than the window (or a quarantined hour) does not drag the expected volume down.

  Identifiers: table; column (its partition timestamp).
  Parameters:  :history_start, :start   the trailing window, history_start <= column < start
  Output:      one row: history_rows, history_hours.
#}
select
    count(*) as history_rows,
    count(distinct date_trunc('hour', {{ column }})) as history_hours
from {{ table }}
where {{ column }} >= :history_start and {{ column }} < :start
