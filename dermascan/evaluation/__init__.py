"""How good a model is on labelled images, and how preprocessing options compare.

Modules, one job each: ``metrics`` (calibration, triage thresholds, the JSON-ready report), ``evaluate``
(a model on a labelled folder), ``compare`` (preprocessing options side by side), ``charts`` (Altair
charts of batch results and metrics, Streamlit-free), ``faithfulness`` (how much a prediction depends on
its heatmap's region), ``explain_check`` (the model-randomisation check and faithfulness per CAM method).
Nothing is imported here, so TensorFlow stays lazy.
"""
