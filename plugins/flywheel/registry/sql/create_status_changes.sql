{#
  create_status_changes.sql: every move of a model version through the lifecycle, registration included
  (from_status null), so who moved what, when and why stays visible after the status column changes again.

  Parameters:  none
  Output:      table registry.status_changes, unless it exists
#}
create schema if not exists registry;
create table if not exists registry.status_changes (
    version varchar not null,
    {# 1, 2, ... per version: timestamps can tie, the order of changes cannot; the key also makes two
       concurrent changes of one version collide instead of both landing #}
    seq integer not null,
    from_status varchar,
    to_status varchar not null,
    reason varchar,
    run_id varchar,
    changed_at timestamp not null,
    primary key (version, seq)
);
