{#
  merge_deployment_step.sql: write one step of a rollout, replacing what an earlier run wrote for the same
  (deployment_id, step), so a retried serving task changes nothing.

  Parameters:  :deployment_id, :version, :step, :traffic_share (0..1), :decision, :reason, :run_id,
               :decided_at
  Output:      one row in registry.deployments, inserted or updated
#}
insert into registry.deployments (
    deployment_id,
    version,
    step,
    traffic_share,
    decision,
    reason,
    run_id,
    decided_at
)
values (
    :deployment_id,
    :version,
    :step,
    :traffic_share,
    :decision,
    :reason,
    :run_id,
    :decided_at
)
on conflict (deployment_id, step) do update set
    version = excluded.version,
    traffic_share = excluded.traffic_share,
    decision = excluded.decision,
    reason = excluded.reason,
    run_id = excluded.run_id,
    decided_at = excluded.decided_at
