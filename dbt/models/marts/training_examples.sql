{{ config(unique_key='impression_id') }}

{# One row per impression: what the model is trained on. The label and gmv look forward (what happened
   after the impression); every feature is the snapshot at the impression's hour, so it looks only back.
   An entity without a snapshot had no activity in the week: it gets the defaults the feature store
   fills in (0, 'none', 168 hours since the last click). #}

with

impressions as (

    select * from {{ ref('stg_events__impressions') }}
    {% if is_incremental() %}
        where event_ts >= {{ window_start('feature_ts') }}
    {% endif %}

),

clicks as (

    select * from {{ ref('stg_events__clicks') }}

),

orders as (

    select * from {{ ref('stg_events__orders') }}

),

user_features as (

    select * from {{ ref('user_features') }}
    {% if is_incremental() %}
        where feature_ts >= {{ window_start('feature_ts') }}
    {% endif %}

),

item_features as (

    select * from {{ ref('item_features') }}
    {% if is_incremental() %}
        where feature_ts >= {{ window_start('feature_ts') }}
    {% endif %}

),

clicked_impressions as (

    select distinct clicks.impression_id
    from clicks
    inner join impressions
        on clicks.impression_id = impressions.impression_id

),

gmv_per_impression as (

    select
        orders.impression_id,
        sum(orders.gmv) as gmv
    from orders
    inner join impressions
        on orders.impression_id = impressions.impression_id
    group by orders.impression_id

),

final as (

    select
        impressions.impression_id,
        impressions.request_id,
        impressions.event_ts,
        impressions.user_id,
        impressions.item_id,
        impressions.position,
        impressions.category,
        impressions.price,
        case when clicked_impressions.impression_id is null then 0 else 1 end as label,  -- noqa: RF04
        coalesce(gmv_per_impression.gmv, 0) as gmv,
        date_trunc('hour', impressions.event_ts) as feature_ts,
        coalesce(user_features.user_impressions_1h, 0) as user_impressions_1h,
        coalesce(user_features.user_clicks_1h, 0) as user_clicks_1h,
        coalesce(user_features.user_ctr_1h, 0) as user_ctr_1h,
        coalesce(user_features.user_impressions_24h, 0) as user_impressions_24h,
        coalesce(user_features.user_clicks_24h, 0) as user_clicks_24h,
        coalesce(user_features.user_ctr_24h, 0) as user_ctr_24h,
        coalesce(user_features.user_impressions_7d, 0) as user_impressions_7d,
        coalesce(user_features.user_clicks_7d, 0) as user_clicks_7d,
        coalesce(user_features.user_ctr_7d, 0) as user_ctr_7d,
        coalesce(user_features.user_top_category, 'none') as user_top_category,
        coalesce(user_features.user_top_category_share, 0) as user_top_category_share,
        coalesce(user_features.user_hours_since_last_click, 168) as user_hours_since_last_click,
        coalesce(item_features.item_category, 'none') as item_category,
        coalesce(item_features.item_price, 0) as item_price,
        coalesce(item_features.item_impressions_24h, 0) as item_impressions_24h,
        coalesce(item_features.item_clicks_24h, 0) as item_clicks_24h,
        coalesce(item_features.item_ctr_24h, 0) as item_ctr_24h,
        coalesce(item_features.item_popularity_24h, 0) as item_popularity_24h,
        coalesce(item_features.item_impressions_7d, 0) as item_impressions_7d,
        coalesce(item_features.item_clicks_7d, 0) as item_clicks_7d,
        coalesce(item_features.item_ctr_7d, 0) as item_ctr_7d

    from impressions
    left join clicked_impressions
        on impressions.impression_id = clicked_impressions.impression_id
    left join gmv_per_impression
        on impressions.impression_id = gmv_per_impression.impression_id
    left join user_features
        on
            impressions.user_id = user_features.user_id
            and date_trunc('hour', impressions.event_ts) = user_features.feature_ts
    left join item_features
        on
            impressions.item_id = item_features.item_id
            and date_trunc('hour', impressions.event_ts) = item_features.feature_ts

)

select * from final
