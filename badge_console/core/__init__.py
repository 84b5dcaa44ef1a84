"""The engine: no Textual import here, ever (tests/test_layering.py proves it)."""
