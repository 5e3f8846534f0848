{#
  ping.sql: whether a warehouse server answers, before any work starts (`flywheel ingest` and friends).

  Identifiers: none.
  Parameters:  none.
  Output:      one row: ok = 1.
#}
select 1 as ok
