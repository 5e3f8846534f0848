{{ config(unique_key=['item_id', 'feature_ts']) }}

{# Hourly snapshots of how each item is shown and clicked, named as the feature store serves them. Every
   value comes from events strictly before feature_ts; a row exists while the item was shown in the last
   7 days. #}

with

item_windows as (

    select * from {{ ref('int_item_hours_windowed') }}
    {% if is_incremental() %}
        where feature_ts >= {{ window_start('feature_ts') }}
    {% endif %}

),

item_hours as (

    select * from {{ ref('int_item_hours_aggregated') }}
    {% if is_incremental() %}
        {# the last shown hour of a rebuilt snapshot is at most a week before it #}
        where event_hour >= {{ window_start('feature_ts') }} - interval '168 hours'
    {% endif %}

),

feature_hours as (

    select * from {{ ref('int_feature_hours_spined') }}

),

final as (

    select
        item_windows.item_id,
        item_windows.feature_ts,
        last_shown.last_category as item_category,
        last_shown.last_price as item_price,
        item_windows.impressions_24h as item_impressions_24h,
        item_windows.clicks_24h as item_clicks_24h,
        {{ ratio('item_windows.clicks_24h', 'item_windows.impressions_24h') }} as item_ctr_24h,
        {{ ratio('item_windows.impressions_24h', 'feature_hours.marketplace_impressions_24h') }}
            as item_popularity_24h,
        item_windows.impressions_7d as item_impressions_7d,
        item_windows.clicks_7d as item_clicks_7d,
        {{ ratio('item_windows.clicks_7d', 'item_windows.impressions_7d') }} as item_ctr_7d

    from item_windows
    inner join feature_hours
        on item_windows.feature_ts = feature_hours.feature_ts
    {# the last hour the item was shown before feature_ts carries the category and price it had then #}
    inner join item_hours as last_shown
        on
            item_windows.item_id = last_shown.item_id
            and item_windows.last_shown_hour = last_shown.event_hour

)

select * from final
