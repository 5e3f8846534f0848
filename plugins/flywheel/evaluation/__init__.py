"""Evaluation, the gate between training and serving: a candidate against the model in service on the same
held-out hours (offline, business, slice and causal evidence), decided on intervals."""
