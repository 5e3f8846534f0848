{#
  create_deployments.sql: the steps of each rollout, one row per (deployment, step), with the share of traffic
  the version served and what was decided at that step.

  Parameters:  none
  Output:      table registry.deployments, unless it exists
#}
create schema if not exists registry;
create table if not exists registry.deployments (
    deployment_id varchar not null,
    version varchar not null,
    step integer not null,
    traffic_share double precision not null,
    decision varchar not null,
    reason varchar,
    run_id varchar,
    decided_at timestamp not null,
    primary key (deployment_id, step)
);
