"""Keyboard play of the dream, the real game, or both side by side (``python play.py``)."""
