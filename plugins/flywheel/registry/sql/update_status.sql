{#
  update_status.sql: move one version to a new status. The transition was checked against
  flywheel.registry.TRANSITIONS and is recorded in registry.status_changes in the same transaction.

  Parameters:  :version, :status, :now
  Output:      registry.model_versions.status and updated_at of that version
#}
update registry.model_versions
set
    status = :status,
    updated_at = :now
where version = :version
