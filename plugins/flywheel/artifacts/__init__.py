"""The model artifact, owned by no stage: the folder a training run leaves (TorchScript, feature spec,
metadata), how its features are encoded, and where it is stored (a path or an object-store URI).
Training writes it; evaluation and serving load and score it."""
