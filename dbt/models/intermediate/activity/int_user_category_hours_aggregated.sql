{# Clicks per user, category and hour, for the user's top category. The category is the clicked
   impression's; a click whose impression never arrived has none and counts only in plain click totals. #}

with

clicks as (

    select * from {{ ref('stg_events__clicks') }}
    {% if is_incremental() %}
        where event_ts >= {{ window_start('event_hour') }}
    {% endif %}

),

{# not filtered: the impression of a click after the cutoff may be from before it #}
impressions as (

    select * from {{ ref('stg_events__impressions') }}

),

final as (

    select
        clicks.user_id,
        impressions.category,
        date_trunc('hour', clicks.event_ts) as event_hour,
        count(*) as clicks

    from clicks
    inner join impressions
        on clicks.impression_id = impressions.impression_id
    group by
        clicks.user_id,
        impressions.category,
        date_trunc('hour', clicks.event_ts)

)

select * from final
