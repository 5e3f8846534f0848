{#
  set_statement_timeout.sql: PostgreSQL cancels a statement of this transaction after :timeout
  (set_config(..., true) is transaction-local).

  Identifiers: none.
  Parameters:  :timeout  a duration PostgreSQL reads, such as '600000ms'
  Output:      one row (set_config's value), ignored.
#}
select set_config('statement_timeout', :timeout, true)
