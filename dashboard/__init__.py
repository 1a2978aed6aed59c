"""Streamlit glue for DermaScan Review: caches, session keys and shared widgets.

Nothing here decides anything clinical; the engine (``dermascan``) does. These modules
only load things once, remember per-session state and draw shared pieces of the pages.
"""
