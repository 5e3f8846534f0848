{#
  psi.sql: the population stability index of each feature, current window against the reference profile.

  Identifiers: those of feature_histogram.sql (it is included here).
  Parameters:  :share_floor  shares below it count as it, so an empty bin does not make PSI infinite (1e-4)
               and those of feature_histogram.sql.
  Output:      one row per feature and bin: feature, kind, bin, bin_kind, lower_edge, upper_edge, category,
               reference_share, current_share, current_rows, window_rows,
               contribution ((q - p) * ln(q / p) of the bin, p and q the floored shares),
               psi (the feature's sum of contributions; NULL for an empty window),
               status ('ok', or 'no_data' when the window has no rows).
#}
with

histogram as (
    {% include "monitoring/feature_histogram.sql" %}
),

floored as (
    select
        feature,
        kind,
        bin,
        bin_kind,
        lower_edge,
        upper_edge,
        category,
        reference_share,
        current_share,
        current_rows,
        window_rows,
        greatest(reference_share, :share_floor) as p,
        greatest(coalesce(current_share, 0), :share_floor) as q
    from histogram
),

final as (
    select
        feature,
        kind,
        bin,
        bin_kind,
        lower_edge,
        upper_edge,
        category,
        reference_share,
        current_share,
        current_rows,
        window_rows,
        (q - p) * ln(q / p) as contribution,
        case
            when window_rows > 0 then sum((q - p) * ln(q / p)) over (partition by feature)
        end as psi,
        case when window_rows > 0 then 'ok' else 'no_data' end as status
    from floored
)

select * from final
order by feature, case when bin < 0 then 1 else 0 end, bin
