"""The classifier and what is known about it.

Modules, one job each: ``lesion`` (``LesionModel`` and ``load_model``: a loaded Keras model plus everything
needed to use it correctly), ``card`` (the model card sidecar), ``loading`` (reading a ``.keras`` / ``.h5``
file, whichever Keras wrote it), ``safety`` (model files are data: the config is scanned for code before any
loader builds a layer), ``folder`` (the models folder the web page may load from), ``introspect`` (facts read
off a Keras model's structure). Nothing is imported here, so ``card`` and ``folder`` import without
TensorFlow; ``lesion``, ``loading`` and ``safety`` (when it checks a file) import it.
"""
