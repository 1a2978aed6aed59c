"""Training of the default DermaScan model (``python -m dermascan.train``).

Modules, one job each: ``split`` (the fixed 70/15/15 split), ``data`` (decoding and tf.data),
``architecture`` (the flat MobileNetV2 model), ``fitting`` (the two phases under a time budget),
``calibration`` (temperature and triage thresholds), ``export`` (model file and card),
``report`` (EVALUATION.md), ``pipeline`` (the whole run).
"""
