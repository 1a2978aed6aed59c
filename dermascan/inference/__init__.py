"""From a prepared image to an ``Analysis``: the steps of one model pass and of many.

Modules, one job each: ``preprocessing`` (registry of pixel scalings and resize policies), ``options``
(``PreprocessingOption``: one way to feed the model, resolved against the card), ``aligned``
(batch buffers TensorFlow can use without a copy), ``tta`` (test-time augmentation), ``batch`` (many images,
decoded in parallel with inference, every failure isolated), ``scoring`` (malignancy score and triage band),
``budget`` (the pixel budget of a batch in flight), ``analysis`` (the ``Analysis`` record).
Nothing is imported here; none of these imports TensorFlow itself.
"""
