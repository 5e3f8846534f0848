{#
  training_entities.sql:
  The entity dataframe of a training set: labels and keys only; Feast joins the features point-in-time,
  so the mart's own feature columns stay out and can be compared against it.

  Identifiers: none.
  Parameters:  :start, :end   examples with start <= event_ts < end
  Output:      impression_id, event_ts, user_id, item_id, position, price, category, label, gmv.
#}
select
    impression_id,
    event_ts,
    user_id,
    item_id,
    position,
    price,
    category,
    label,
    gmv
from marts.training_examples
where
    event_ts >= :start
    and event_ts < :end
order by event_ts, impression_id
