{#
  delete_publication.sql: a run's publication record, before it is written again (a rerun replaces it).

  Identifiers: table (features.publications).
  Parameters:  :run_id
  Output:      none.
#}
delete from {{ table }}
where run_id = :run_id
