{#
  stored_profile.sql: what the hourly check needs of a stored profile: its features, kinds and edges.

  Identifiers: table (monitoring.reference_profiles).
  Parameters:  :profile_id  the profile (a model version)
  Output:      feature, kind, bin, bin_kind, lower_edge, bins; no rows when the profile is not stored.
#}
select
    feature,
    kind,
    bin,
    bin_kind,
    lower_edge,
    bins
from {{ table }}
where profile_id = :profile_id
order by feature, bin
