{#
  delete_evaluation.sql: drop every row of one evaluation before it is written again, so recording an
  evaluation twice leaves one set of rows.

  Parameters:  :evaluation_id
  Output:      none (rows removed from registry.evaluations)
#}
delete from registry.evaluations
where evaluation_id = :evaluation_id
