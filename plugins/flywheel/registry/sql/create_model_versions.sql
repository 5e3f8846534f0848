{#
  create_model_versions.sql: the model registry, one row per trained model, from its data version to its
  artifact and its status in the lifecycle (flywheel.registry.TRANSITIONS).

  Parameters:  none
  Output:      schema registry and table registry.model_versions, unless they exist
#}
create schema if not exists registry;
create table if not exists registry.model_versions (
    version varchar primary key,
    ordinal integer not null unique,
    parent_version varchar,
    data_version varchar not null,
    {# the training window, which monitoring profiles as the model's drift reference #}
    window_start timestamp,
    window_end timestamp,
    params varchar not null,
    metrics varchar not null,
    artifact_uri varchar not null,
    status varchar not null,
    run_id varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    {# a retried training task registers the same model once #}
    unique (data_version, artifact_uri)
);
