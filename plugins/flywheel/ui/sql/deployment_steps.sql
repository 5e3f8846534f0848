{#
  deployment_steps.sql: the steps of one rollout: the one the canary state names, else the newest.

  Parameters:  :deployment_id   the canary state's deployment, or null
  Output:      deployment_id, version, step, traffic_share, decision, reason, run_id (deploy_model's run),
               decided_at; in step order
#}
with

newest as (
    select deployment_id
    from registry.deployments
    order by decided_at desc, deployment_id desc
    limit 1
)

select
    steps.deployment_id,
    steps.version,
    steps.step,
    steps.traffic_share,
    steps.decision,
    steps.reason,
    steps.run_id,
    steps.decided_at
from registry.deployments as steps
where steps.deployment_id = coalesce(:deployment_id, (select newest.deployment_id from newest))
order by steps.step
