{#
  delete_validation.sql: one gate's validation record for one run and interval, before it is written
  again (a rerun replaces it).

  Identifiers: table (quarantine.validations).
  Parameters:  :run_id, :suite, :interval_start, :interval_end
  Output:      none.
#}
delete from {{ table }}
where
    run_id = :run_id
    and suite = :suite
    and interval_start = :interval_start
    and interval_end = :interval_end
