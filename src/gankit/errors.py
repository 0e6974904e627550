"""Errors a user can cause. The CLI turns these into one line on stderr and exit status 2."""


class GankitError(Exception):
    """A problem with the user's input (config, files, shapes): reported in one line, exit 2."""


class ConfigError(GankitError):
    """A bad preset, config key, value or combination."""


class DataError(GankitError):
    """A missing, empty, unreadable or corrupt data source."""


class NonFiniteError(GankitError):
    """A loss, a gradient or a network's weights became NaN or Inf during training."""
