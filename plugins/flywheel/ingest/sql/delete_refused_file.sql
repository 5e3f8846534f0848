{#
  delete_refused_file.sql: the refusal record of one quarantined copy, before it is written again (a
  rerun refuses the same file into the same quarantine path).

  Identifiers: table (quarantine.files).
  Parameters:  :quarantine_path
  Output:      none.
#}
delete from {{ table }}
where quarantine_path = :quarantine_path
