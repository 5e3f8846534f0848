{{ config(unique_key=['user_id', 'feature_ts']) }}

{# Hourly snapshots of each user's recent behaviour, named as the feature store serves them. Every value
   comes from events strictly before feature_ts; a row exists while the user was shown something in the
   last 7 days. #}

with

user_windows as (

    select * from {{ ref('int_user_hours_windowed') }}
    {% if is_incremental() %}
        where feature_ts >= {{ window_start('feature_ts') }}
    {% endif %}

),

top_categories as (

    select * from {{ ref('int_user_top_categories_ranked') }}
    {% if is_incremental() %}
        where feature_ts >= {{ window_start('feature_ts') }}
    {% endif %}

),

final as (

    select
        user_windows.user_id,
        user_windows.feature_ts,
        user_windows.impressions_1h as user_impressions_1h,
        user_windows.clicks_1h as user_clicks_1h,
        {{ ratio('user_windows.clicks_1h', 'user_windows.impressions_1h') }} as user_ctr_1h,
        user_windows.impressions_24h as user_impressions_24h,
        user_windows.clicks_24h as user_clicks_24h,
        {{ ratio('user_windows.clicks_24h', 'user_windows.impressions_24h') }} as user_ctr_24h,
        user_windows.impressions_7d as user_impressions_7d,
        user_windows.clicks_7d as user_clicks_7d,
        {{ ratio('user_windows.clicks_7d', 'user_windows.impressions_7d') }} as user_ctr_7d,
        coalesce(top_categories.category, 'none') as user_top_category,
        {{ ratio('coalesce(top_categories.clicks_7d, 0)', 'user_windows.clicks_7d') }}
            as user_top_category_share,
        {# no click in the week (or ever) reads as a week ago: the cap keeps the feature bounded #}
        cast(coalesce(least(
            extract(epoch from user_windows.feature_ts - user_windows.last_click_ts) / 3600.0, 168
        ), 168) as double precision) as user_hours_since_last_click

    from user_windows
    left join top_categories
        on
            user_windows.user_id = top_categories.user_id
            and user_windows.feature_ts = top_categories.feature_ts

)

select * from final
