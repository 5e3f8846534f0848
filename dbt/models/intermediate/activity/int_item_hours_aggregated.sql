{# How often each item was shown and clicked in each hour, and the category and price of its last
   impression in the hour (a snapshot's item_price is the latest price displayed before it). #}

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

impressions_ranked as (

    select
        item_id,
        date_trunc('hour', event_ts) as event_hour,
        category,
        price,
        {# impression_id breaks ties between impressions in the same microsecond, the same on every run #}
        row_number() over (
            partition by item_id, date_trunc('hour', event_ts)
            order by event_ts desc, impression_id desc
        ) as recency_rank
    from impressions

),

shown as (

    select
        item_id,
        event_hour,
        count(*) as impressions,
        max(case when recency_rank = 1 then category end) as last_category,
        max(case when recency_rank = 1 then price end) as last_price
    from impressions_ranked
    group by item_id, event_hour

),

clicked as (

    select
        item_id,
        date_trunc('hour', event_ts) as event_hour,
        count(*) as clicks
    from clicks
    group by item_id, date_trunc('hour', event_ts)

),

{# an item may be clicked in an hour it was not shown in (the click came after the hour turned) #}
item_hours as (

    select
        item_id,
        event_hour
    from shown

    union

    select
        item_id,
        event_hour
    from clicked

),

final as (

    select
        item_hours.item_id,
        item_hours.event_hour,
        shown.last_category,
        shown.last_price,
        coalesce(shown.impressions, 0) as impressions,
        coalesce(clicked.clicks, 0) as clicks

    from item_hours
    left join shown
        on
            item_hours.item_id = shown.item_id
            and item_hours.event_hour = shown.event_hour
    left join clicked
        on
            item_hours.item_id = clicked.item_id
            and item_hours.event_hour = clicked.event_hour

)

select * from final
