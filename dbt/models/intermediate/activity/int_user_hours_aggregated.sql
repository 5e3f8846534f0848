{# What each user saw and clicked in each hour. A snapshot at feature_ts reads only the hours before it,
   so an event exactly at feature_ts lands in the hour feature_ts and never reaches that snapshot. #}

with

impressions as (

    select * from {{ ref('stg_events__impressions') }}
    {% if is_incremental() %}
        where event_ts >= {{ window_start('event_hour') }}
    {% endif %}

),

clicks as (

    select * from {{ ref('stg_events__clicks') }}
    {% if is_incremental() %}
        where event_ts >= {{ window_start('event_hour') }}
    {% endif %}

),

activity as (

    select
        user_id,
        date_trunc('hour', event_ts) as event_hour,
        1 as is_impression,
        0 as is_click,
        cast(null as timestamp) as click_ts
    from impressions

    union all

    select
        user_id,
        date_trunc('hour', event_ts) as event_hour,
        0 as is_impression,
        1 as is_click,
        event_ts as click_ts
    from clicks

),

final as (

    select
        user_id,
        event_hour,
        cast(sum(is_impression) as bigint) as impressions,
        cast(sum(is_click) as bigint) as clicks,
        {# the exact time, not the hour: hours since the last click is measured to the microsecond #}
        max(click_ts) as last_click_ts

    from activity
    group by user_id, event_hour

)

select * from final
