{# One row per click; impression_id points at the impression it answers. #}

with

source as (

    select * from {{ source('events', 'clicks') }}

),

final as (

    select
        click_id,
        impression_id,
        event_ts,
        user_id,
        item_id

    from source

)

select * from final
