select column_name
from information_schema.columns
where table_schema = :schema and table_name = :name
order by ordinal_position
