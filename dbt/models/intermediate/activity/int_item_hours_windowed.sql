{{ config(window_column='feature_ts', unique_key=['item_id', 'feature_ts']) }}

{# Each item's impressions and clicks in the 24 hours and 7 days before every snapshot hour, and the
   hour it was last shown. A snapshot exists while the item had an impression in the last 7 days. #}

with

item_hours as (

    select * from {{ ref('int_item_hours_aggregated') }}
    {% if is_incremental() %}
        {# the rebuilt snapshots look back a week, so they need a week of hours before the cutoff #}
        where event_hour >= {{ window_start('feature_ts') }} - interval '168 hours'
    {% endif %}

),

feature_hours as (

    select * from {{ ref('int_feature_hours_spined') }}

),

spans as (

    select
        item_id,
        min(event_hour) as first_hour,
        least(
            max(event_hour) + interval '168 hours',
            (select max(feature_hours.feature_ts) from feature_hours)
        ) as last_hour
    from item_hours
    group by item_id

),

grid as (

    select
        item_id,
        {{ hour_series('first_hour', 'last_hour') }} as feature_ts
    from spans

),

hourly as (

    {# one row per item and hour, so a frame of n rows is exactly the n hours before feature_ts #}
    select
        grid.item_id,
        grid.feature_ts,
        coalesce(item_hours.impressions, 0) as impressions,
        coalesce(item_hours.clicks, 0) as clicks,
        case when item_hours.impressions > 0 then item_hours.event_hour end as shown_hour
    from grid
    left join item_hours
        on
            grid.item_id = item_hours.item_id
            and grid.feature_ts = item_hours.event_hour

),

windowed as (

    {# every frame ends 1 preceding: the row of feature_ts itself holds events at or after feature_ts #}
    select
        item_id,
        feature_ts,
        sum(impressions) over (by_hour rows between 24 preceding and 1 preceding) as impressions_24h,
        sum(clicks) over (by_hour rows between 24 preceding and 1 preceding) as clicks_24h,
        sum(impressions) over (by_hour rows between 168 preceding and 1 preceding) as impressions_7d,
        sum(clicks) over (by_hour rows between 168 preceding and 1 preceding) as clicks_7d,
        max(shown_hour) over (by_hour rows between unbounded preceding and 1 preceding) as last_shown_hour
    from hourly
    window by_hour as (partition by item_id order by feature_ts)

),

final as (

    select
        windowed.item_id,
        windowed.feature_ts,
        cast(windowed.impressions_24h as bigint) as impressions_24h,
        cast(windowed.clicks_24h as bigint) as clicks_24h,
        cast(windowed.impressions_7d as bigint) as impressions_7d,
        cast(windowed.clicks_7d as bigint) as clicks_7d,
        windowed.last_shown_hour

    from windowed
    inner join feature_hours
        on windowed.feature_ts = feature_hours.feature_ts
    where
        windowed.impressions_7d > 0
        {% if is_incremental() %}
            and windowed.feature_ts >= {{ window_start('feature_ts') }}
        {% endif %}

)

select * from final
