"""Serving: models exported into a Triton Inference Server, the inference gateway that ranks for users and
logs every prediction back into the landing zone, and the ``deploy_model`` rollout (canary, analysis,
rollback, promotion). Importing this package loads nothing heavy (the DAG file imports its operator)."""
