select count(*) as log_rows from canary_log
