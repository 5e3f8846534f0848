{#
  add_model_version.sql: give a feature_drift table written before rows named their model the
  model_version column. The profile was always the model's version (train_model stores each model's
  reference under it), so it is the model those rows were measured against.

  Identifiers: table (monitoring.feature_drift).
  Parameters:  none.
  Output:      none (two statements; idempotent).
#}
alter table {{ table }} add column if not exists model_version varchar;

update {{ table }} set model_version = profile_id
where model_version is null;
