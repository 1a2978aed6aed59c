"""Training of the default DermaScan model (``python -m dermascan.train``).

Modules, one job each: ``split`` (the fixed 70/15/15 v1 split and the lesion-grouped ``split_v2``),
``data`` (decoding, augmentation and tf.data), ``backbones`` (ImageNet backbones, the torchvision ports),
``architecture`` (the flat backbone + softmax head), ``fitting`` (the two phases under a time budget,
logit-adjusted loss, EMA), ``calibration`` (temperature and triage thresholds), ``export`` (model file
and card), ``weight_storage`` (half-precision kernels in the file), ``report`` / ``report_render``
(EVALUATION.md with intervals and subgroups), ``pipeline`` (the whole run), ``trained_run`` (a run's folder
read back), ``ensemble`` (several runs as one model), ``promote`` (a probe finished into a release),
``compare_models`` (a candidate against the shipped model), ``linear_probe`` / ``posthoc`` (validation-only
probes).
"""
