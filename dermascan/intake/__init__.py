"""Input: untrusted uploads in, checked RGB arrays and labelled image sets out.

Modules, one job each: ``images`` (bytes or a file -> an RGB ``uint8`` array, or ``InvalidImage``),
``archive`` (zip uploads read lazily, in memory, within limits), ``labelsets`` (a folder of images plus
an ``image_id,dx`` CSV). Standard library, Pillow and NumPy only: importing this never imports TensorFlow.
"""
