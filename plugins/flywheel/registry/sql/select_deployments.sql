{#
  select_deployments.sql: rollout steps, each deployment's steps in order.

  Flags:       by_version       only the steps of :version
               by_deployment    only the steps of :deployment_id
  Parameters:  those the flags name
  Output:      every column of registry.deployments
#}
select
    deployment_id,
    version,
    step,
    traffic_share,
    decision,
    reason,
    run_id,
    decided_at
from registry.deployments
where
    true
    {%- if by_version | default(false) %}
        and version = :version
    {%- endif %}
    {%- if by_deployment | default(false) %}
        and deployment_id = :deployment_id
    {%- endif %}
order by deployment_id, step
