{# A partition is a half-open time range, so adjacent intervals never share a row. #}
delete from {{ table }}
where {{ column }} >= :start and {{ column }} < :end
