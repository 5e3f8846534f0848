{#
  online_performance.sql: how the served model did in one window, from the prediction log and the clicks.

  A prediction is labelled clicked when its impression has a click, whenever the click came (clicks are
  attributed by impression, so a rerun after late clicks arrive sees them). AUC is the Mann-Whitney
  statistic: the mean rank of clicked predictions among all, ties given their average rank.

  The gateway logs a score for every candidate it ranked; only those shown count when impressions_table is
  given (the user saw the item: its impression_id is in the impressions). Without it every prediction
  counts as shown.

  Identifiers: predictions_table (raw.predictions: prediction_id, impression_id, event_ts, model_version,
               score); impressions_table (raw.impressions: impression_id, ...), or none; clicks_table (raw.clicks: click_id, impression_id, event_ts, user_id, item_id), or
               none when no click has been loaded yet.
  Parameters:  :window_start, :window_end   predictions with window_start <= event_ts < window_end
  Output:      one row: impressions (distinct impressions predicted), predictions, clicks (clicked
               impressions), ctr (clicks / impressions), predicted_ctr (mean score), ctr_ratio
               (ctr / predicted_ctr: 1 is calibrated), auc. All rates are NULL when there are no
               predictions; auc is NULL unless there are both clicked and unclicked predictions.
#}
with

window_predictions as (
    select
        impression_id,
        score
    from {{ predictions_table }}
    where
        event_ts >= :window_start and event_ts < :window_end
    {%- if impressions_table %}
    and impression_id in (
        select shown.impression_id
        from {{ impressions_table }} as shown
        where shown.event_ts >= :window_start
    )
    {%- endif %}
),

clicked_impressions as (
    {%- if clicks_table %}
    select distinct clicks.impression_id
    from {{ clicks_table }} as clicks
    where clicks.impression_id in (select w.impression_id from window_predictions as w)
    {%- else %}
    select cast(null as varchar) as impression_id
    where 1 = 0
    {%- endif %}
),

labelled as (
    select
        p.impression_id,
        p.score,
        case when c.impression_id is null then 0 else 1 end as clicked
    from window_predictions as p
    left join clicked_impressions as c on p.impression_id = c.impression_id
),

ranked as (
    select
        clicked,
        rank() over (order by score)
        + cast(count(*) over (partition by score) - 1 as double precision) / 2 as score_rank
    from labelled
    where score is not null
),

ranks as (
    select
        sum(clicked) as positives,
        sum(1 - clicked) as negatives,
        sum(case when clicked = 1 then score_rank else 0 end) as positive_rank_sum
    from ranked
),

totals as (
    select
        count(*) as predictions,
        count(distinct impression_id) as impressions,
        count(distinct case when clicked = 1 then impression_id end) as clicks,
        avg(score) as predicted_ctr
    from labelled
),

final as (
    select
        t.impressions,
        t.predictions,
        t.clicks,
        t.predicted_ctr,
        cast(t.clicks as double precision) / nullif(t.impressions, 0) as ctr,
        (cast(t.clicks as double precision) / nullif(t.impressions, 0))
        / nullif(t.predicted_ctr, 0) as ctr_ratio,
        case
            when r.positives > 0 and r.negatives > 0
                then (
                    r.positive_rank_sum - cast(r.positives as double precision) * (r.positives + 1) / 2
                ) / (cast(r.positives as double precision) * r.negatives)
        end as auc
    from totals as t
    cross join ranks as r
)

select * from final
