{#
  canary_log.sql: one row per request served in a canary's windows, from the landing zone's Parquet files,
  for sql/evaluation/did.sql (run by flywheel.serving.canary).

  Flags:       with_impressions (only shown predictions count: the gateway scores every candidate, users
               see the top of the ranking), with_clicks (otherwise nothing was clicked yet).
  Parameters:  :predictions, :impressions, :clicks   lists of Parquet files
               :before_start, :canary_start          before = champion-only traffic, bucketed by the user's
               :weight                               hash at this step's weight
               :step_start, :after_end               after = the step, bucketed as served
               :champion, :version                   the two versions compared
  Output:      table canary_log: request_id, user_id, bucket, served_at, ctr (clicks per shown item),
               predicted (mean score of the shown items), items, clicks.
#}
create table canary_log as
with

{%- if with_impressions %}
shown as (
    select distinct impression_id from read_parquet(:impressions)
),
{%- endif %}

predictions as (
    select served.*
    from read_parquet(:predictions, union_by_name = true) as served
    {%- if with_impressions %}
inner join shown on served.impression_id = shown.impression_id
    {%- endif %}
),

clicked as (
    {%- if with_clicks %}
    select distinct impression_id from read_parquet(:clicks)
    {%- else %}
    select cast(null as varchar) as impression_id
    where false
    {%- endif %}
),

per_request as (
    select
        p.request_id,
        any_value(p.user_id) as user_id,
        any_value(p.user_hash) as user_hash,
        any_value(p.bucket) as served_bucket,
        any_value(p.model_version) as model_version,
        min(p.event_ts) as served_at,
        count(*) as items,
        avg(p.score) as predicted,
        count(c.impression_id) as clicks
    from predictions as p
    left join clicked as c on p.impression_id = c.impression_id
    group by p.request_id
)

select
    request_id,
    user_id,
    case
        when served_at < :canary_start
            then case when user_hash < :weight then 'canary' else 'champion' end
        else served_bucket
    end as bucket,
    served_at,
    cast(clicks as double) / items as ctr,
    predicted,
    items,
    clicks
from per_request
where
    (served_at >= :before_start and served_at < :canary_start and model_version = :champion)
    or (served_at >= :step_start and served_at < :after_end and model_version in (:champion, :version))
