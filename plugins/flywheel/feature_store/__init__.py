"""The Feast feature store over the warehouse marts, owned by no stage: features publishes into it
(apply, materialize), training reads point-in-time training sets from it, serving reads online features."""
