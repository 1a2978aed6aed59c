"""The classifier and what is known about it.

Modules, one job each: ``lesion`` (``LesionModel`` and ``load_model``: a loaded Keras model plus everything
needed to use it correctly), ``card`` (the model card sidecar), ``loading`` (reading a ``.keras`` / ``.h5``
file, whichever Keras wrote it), ``introspect`` (facts read off a Keras model's structure).
Nothing is imported here, so ``card`` can be read without TensorFlow; ``lesion`` and ``loading`` import it.
"""
