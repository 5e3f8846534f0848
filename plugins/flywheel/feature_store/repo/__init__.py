"""The Feast feature repo (definitions and config template); Feast itself skips this file when applying."""
