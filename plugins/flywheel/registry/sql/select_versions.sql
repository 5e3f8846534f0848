{#
  select_versions.sql: model versions, filtered and ordered by the flags the caller renders with.

  Flags:       by_version   where version = :version
               by_origin    where data_version = :data_version and artifact_uri = :artifact_uri
               by_status    where status = :status
               in_running   where status is candidate, blessed or canary (not judged unfit, not retired)
               newest_first order by ordinal descending (else ascending)
               limited      at most :limit rows
  Parameters:  those the flags name
  Output:      every column of registry.model_versions, one row per version
#}
select
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
from registry.model_versions
where
    true
    {%- if by_version | default(false) %}
        and version = :version
    {%- endif %}
    {%- if by_origin | default(false) %}
        and data_version = :data_version
        and artifact_uri = :artifact_uri
    {%- endif %}
    {%- if by_status | default(false) %}
        and status = :status
    {%- endif %}
    {%- if in_running | default(false) %}
        and status in ('candidate', 'blessed', 'canary')
    {%- endif %}
order by ordinal {{ "desc" if newest_first | default(false) else "asc" }}
{%- if limited | default(false) %}
    limit :limit
{%- endif %}
