{#
  add_refusal_resolution.sql:
  quarantine.files tables created before refusals could be resolved lack these two columns; both DuckDB
  and PostgreSQL accept "if not exists", so this runs on every load at no cost once they exist.

  Identifiers: none.
  Parameters:  none.
  Output:      none (two statements; idempotent).
#}
alter table quarantine.files add column if not exists resolved_at timestamp;
alter table quarantine.files add column if not exists resolved_by_run_id varchar;
