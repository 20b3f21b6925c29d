"""Training, inference and checkpointing around the spotting model."""
