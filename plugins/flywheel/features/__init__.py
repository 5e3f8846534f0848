"""The Feast feature store over the warehouse marts: apply, materialize, training sets, online reads."""
