{#
  insert_version.sql: register a trained model as a candidate. The caller looked for the same
  (data_version, artifact_uri) first; the unique key refuses a duplicate that raced past that look.

  Parameters:  :version, :ordinal, :parent_version, :data_version, :window_start, :window_end, :params,
               :metrics (json text), :artifact_uri, :run_id, :now
  Output:      one row in registry.model_versions with status candidate
#}
insert into registry.model_versions (
    version,
    ordinal,
    parent_version,
    data_version,
    window_start,
    window_end,
    params,
    metrics,
    artifact_uri,
    status,
    run_id,
    created_at,
    updated_at
)
values (
    :version,
    :ordinal,
    :parent_version,
    :data_version,
    :window_start,
    :window_end,
    :params,
    :metrics,
    :artifact_uri,
    'candidate',
    :run_id,
    :now,
    :now
)
