"""Evaluation: metrics as functions returning flat dicts of floats, feature extractors behind one
registry (``metrics.features``), cached reference statistics, and ``evaluate`` for `gankit eval`."""
