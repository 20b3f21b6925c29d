"""Evaluation metrics: mAP at frame tolerances (``spotting``) and SoccerNet
average-mAP (``soccernet``). Pure numpy over the records of ``uglspot.data``."""
