{# Rows and the hours that had any, before the interval: the average counts only hours with data, so a table
   younger than the window (or a quarantined hour) does not drag the expected volume down. #}
select
    count(*) as history_rows,
    count(distinct date_trunc('hour', {{ column }})) as history_hours
from {{ table }}
where {{ column }} >= :history_start and {{ column }} < :start
