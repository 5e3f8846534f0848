{#
  create_evaluations.sql: offline evaluations of model versions, one row per (evaluation, version, metric,
  slice), with the champion compared against and the verdict of each metric's gate.

  Parameters:  none
  Output:      table registry.evaluations, unless it exists
#}
create schema if not exists registry;
create table if not exists registry.evaluations (
    evaluation_id varchar not null,
    version varchar not null,
    baseline_version varchar,
    metric varchar not null,
    slice varchar not null default 'all',
    value double precision not null,
    {# the 95% interval, when the evaluation computed one #}
    lower double precision,
    upper double precision,
    passed boolean,
    {# json text: both backends store it the same way #}
    detail varchar,
    created_at timestamp not null,
    primary key (evaluation_id, version, metric, slice)
);
