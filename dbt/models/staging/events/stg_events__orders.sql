{# One row per order placed after a click; gmv = quantity x the price displayed at the impression. #}

with

source as (

    select * from {{ source('events', 'orders') }}

),

final as (

    select
        order_id,
        impression_id,
        event_ts,
        user_id,
        item_id,
        quantity,
        gmv

    from source

)

select * from final
