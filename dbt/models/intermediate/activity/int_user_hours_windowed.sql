{{ config(window_column='feature_ts', unique_key=['user_id', 'feature_ts']) }}

{# Each user's activity in the 1 hour, 24 hours and 7 days before every snapshot hour. A snapshot reads
   only hours before feature_ts, and exists while the user had an impression in the last 7 days. #}

with

user_hours as (

    select * from {{ ref('int_user_hours_aggregated') }}
    {% if is_incremental() %}
        {# the rebuilt snapshots look back a week, so they need a week of hours before the cutoff #}
        where event_hour >= {{ window_start('feature_ts') }} - interval '168 hours'
    {% endif %}

),

feature_hours as (

    select * from {{ ref('int_feature_hours_spined') }}

),

spans as (

    {# snapshots run from the first active hour until a week after the last, within the data #}
    select
        user_id,
        min(event_hour) as first_hour,
        least(
            max(event_hour) + interval '168 hours',
            (select max(feature_hours.feature_ts) from feature_hours)
        ) as last_hour
    from user_hours
    group by user_id

),

grid as (

    select
        user_id,
        {{ hour_series('first_hour', 'last_hour') }} as feature_ts
    from spans

),

hourly as (

    {# one row per user and hour, so a frame of n rows is exactly the n hours before feature_ts #}
    select
        grid.user_id,
        grid.feature_ts,
        user_hours.last_click_ts,
        coalesce(user_hours.impressions, 0) as impressions,
        coalesce(user_hours.clicks, 0) as clicks
    from grid
    left join user_hours
        on
            grid.user_id = user_hours.user_id
            and grid.feature_ts = user_hours.event_hour

),

windowed as (

    {# every frame ends 1 preceding: the row of feature_ts itself holds events at or after feature_ts #}
    select
        user_id,
        feature_ts,
        sum(impressions) over (by_hour rows between 1 preceding and 1 preceding) as impressions_1h,
        sum(clicks) over (by_hour rows between 1 preceding and 1 preceding) as clicks_1h,
        sum(impressions) over (by_hour rows between 24 preceding and 1 preceding) as impressions_24h,
        sum(clicks) over (by_hour rows between 24 preceding and 1 preceding) as clicks_24h,
        sum(impressions) over (by_hour rows between 168 preceding and 1 preceding) as impressions_7d,
        sum(clicks) over (by_hour rows between 168 preceding and 1 preceding) as clicks_7d,
        {# the mart caps hours since the last click at 168, so a click older than the week may count here #}
        max(last_click_ts) over (by_hour rows between unbounded preceding and 1 preceding) as last_click_ts
    from hourly
    window by_hour as (partition by user_id order by feature_ts)

),

final as (

    {# the spine keeps the hours of the data range (and lets a unit test ask for a single hour) #}
    select
        windowed.user_id,
        windowed.feature_ts,
        cast(windowed.impressions_1h as bigint) as impressions_1h,
        cast(windowed.clicks_1h as bigint) as clicks_1h,
        cast(windowed.impressions_24h as bigint) as impressions_24h,
        cast(windowed.clicks_24h as bigint) as clicks_24h,
        cast(windowed.impressions_7d as bigint) as impressions_7d,
        cast(windowed.clicks_7d as bigint) as clicks_7d,
        windowed.last_click_ts

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
