select count(*) as row_count
from {{ table }}
where {{ column }} >= :start and {{ column }} < :end
