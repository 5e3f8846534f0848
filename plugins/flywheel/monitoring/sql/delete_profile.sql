{#
  delete_profile.sql: a stored reference profile, before it is written again (a rerun replaces it).

  Identifiers: table (monitoring.reference_profiles).
  Parameters:  :profile_id  the profile to replace
  Output:      none.
#}
delete from {{ table }}
where profile_id = :profile_id
