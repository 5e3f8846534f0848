{# Files ingest refused for this interval: a raw partition that arrives short often has its rows here. #}
select count(*) as files
from quarantine.files
where table_name = :table_name and interval_start < :end and interval_end > :start
