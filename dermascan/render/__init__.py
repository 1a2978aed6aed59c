"""Pictures of a result: what the dashboard and the CLI show or save.

Modules, one job each: ``overlay`` (heatmap colouring and blending, cheap enough for every slider move),
``png`` (fast PNG encoding of RGB images), ``numbers`` (the one percent formatter), ``text`` (user strings
as plain text: invisible characters removed, Markdown neutralised). No TensorFlow.
"""
