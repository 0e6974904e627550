"""Evaluation: metrics as functions on tensors and files returning flat dicts of floats, each registered
once in ``metrics.registry`` (``METRICS``), feature extractors behind one registry (``metrics.features``),
cached reference statistics, and ``evaluate`` for `gankit eval`."""
