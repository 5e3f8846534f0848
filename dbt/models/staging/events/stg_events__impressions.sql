{# One row per item shown in a slate, as loaded by ingest_events; _source_file is lineage, not data. #}

with

source as (

    select * from {{ source('events', 'impressions') }}

),

final as (

    select
        impression_id,
        request_id,
        event_ts,
        user_id,
        item_id,
        position,
        category,
        price

    from source

)

select * from final
