"""The spotting network (UGL): ``create_model(name, num_classes, **overrides)``."""

from uglspot.model.spotter import (
    SpotterConfig, SpotterOutput, UGLSpotter, create_model, list_models)

__all__ = ["SpotterConfig", "SpotterOutput", "UGLSpotter", "create_model", "list_models"]
