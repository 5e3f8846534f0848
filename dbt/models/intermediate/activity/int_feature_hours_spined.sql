{{ config(materialized='table') }}

{# Every hour a snapshot may be taken at, from the first event's hour to the hour after the last event
   (the latest complete snapshot), with the marketplace's impressions in the 24 hours before each.
   One row per hour, so it is rebuilt whole on every run. #}

with

item_hours as (

    select * from {{ ref('int_item_hours_aggregated') }}

),

bounds as (

    select
        min(event_hour) as first_hour,
        max(event_hour) + interval '1 hour' as last_hour
    from item_hours

),

spine as (

    select {{ hour_series('first_hour', 'last_hour') }} as feature_ts
    from bounds

),

hourly_impressions as (

    select
        event_hour,
        sum(impressions) as impressions
    from item_hours
    group by event_hour

),

final as (

    select
        spine.feature_ts,
        {# the spine has every hour, so 24 rows back is exactly [feature_ts - 24h, feature_ts) #}
        cast(coalesce(sum(hourly_impressions.impressions) over (
            order by spine.feature_ts
            rows between 24 preceding and 1 preceding
        ), 0) as bigint) as marketplace_impressions_24h

    from spine
    left join hourly_impressions
        on spine.feature_ts = hourly_impressions.event_hour

)

select * from final
