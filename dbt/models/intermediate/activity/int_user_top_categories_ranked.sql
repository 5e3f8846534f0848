{{ config(window_column='feature_ts', unique_key=['user_id', 'feature_ts']) }}

{# Each user's most clicked category in the 7 days before every snapshot hour, ties going to the name
   that sorts first. Only snapshots with a click in the week have a row; the mart fills in 'none'. #}

with

category_hours as (

    select * from {{ ref('int_user_category_hours_aggregated') }}
    {% if is_incremental() %}
        where event_hour >= {{ window_start('feature_ts') }} - interval '168 hours'
    {% endif %}

),

feature_hours as (

    select * from {{ ref('int_feature_hours_spined') }}

),

spread as (

    {# an hour's clicks count towards the snapshots after it, up to a week: (event_hour, event_hour + 7d] #}
    select
        user_id,
        category,
        clicks,
        {{ hour_series(
            "event_hour + interval '1 hour'",
            "least(event_hour + interval '168 hours', (select max(feature_hours.feature_ts) from feature_hours))"
        ) }} as feature_ts
    from category_hours

),

ranked as (

    select
        user_id,
        feature_ts,
        category,
        sum(clicks) as clicks_7d,
        row_number() over (
            partition by user_id, feature_ts
            order by sum(clicks) desc, category asc
        ) as category_rank
    from spread
    group by user_id, feature_ts, category

),

final as (

    select
        ranked.user_id,
        ranked.feature_ts,
        ranked.category,
        cast(ranked.clicks_7d as bigint) as clicks_7d

    {# the spine keeps the hours of the data range (and lets a unit test ask for a single hour) #}
    from ranked
    inner join feature_hours
        on ranked.feature_ts = feature_hours.feature_ts
    where
        ranked.category_rank = 1
        {% if is_incremental() %}
            and ranked.feature_ts >= {{ window_start('feature_ts') }}
        {% endif %}

)

select * from final
