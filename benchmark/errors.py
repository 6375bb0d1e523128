"""The exception hierarchy. Every error a user can cause derives from `MedSynBenchError`.

MedSynBenchError                 a user-facing problem: printed as one message, no traceback
├── SuiteError                   a suite file is unreadable or invalid (file, key path, fix)
├── PluginError                  plugin lookup or registration failed
│   ├── UnknownPluginError       no plugin of that name (did-you-mean + available names)
│   └── DuplicatePluginError     two distributions register the same name
├── ParameterError               a plugin parameter has a wrong name, type or value
├── DataError                    a dataset is missing, malformed or inconsistent
├── WeightsError                 model weights are missing (names the file and where to get it)
├── GeneratorError               fit/sample failed in a way the plugin detected (NaN loss, ...)
├── TaskError                    a utility task cannot run on its inputs
├── OutputError                  the output or cache directory cannot be written
└── ResultsError                 a results/leaderboard file is malformed or incompatible
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DuplicatePluginError",
    "GeneratorError",
    "MedSynBenchError",
    "OutputError",
    "ParameterError",
    "PluginError",
    "ResultsError",
    "SuiteError",
    "TaskError",
    "UnknownPluginError",
    "WeightsError",
]


class MedSynBenchError(Exception):
    """Base of every error caused by user input or environment (not by a bug)."""


class SuiteError(MedSynBenchError):
    """A suite file cannot be parsed or does not validate."""


class PluginError(MedSynBenchError):
    """A plugin could not be found, loaded or registered."""


class UnknownPluginError(PluginError):
    """No plugin of the requested kind has that name."""


class DuplicatePluginError(PluginError):
    """Two plugins of one kind share a name."""


class ParameterError(MedSynBenchError):
    """A plugin parameter is unknown or has a bad type or value."""


class DataError(MedSynBenchError):
    """Dataset files are missing, malformed or inconsistent."""


class WeightsError(MedSynBenchError):
    """Pretrained weights are not available offline."""


class GeneratorError(MedSynBenchError):
    """A generator detected a failure (divergence, bad checkpoint, bad request)."""


class TaskError(MedSynBenchError):
    """A downstream task cannot run on the data it was given."""


class OutputError(MedSynBenchError):
    """An output or cache location cannot be written."""


class ResultsError(MedSynBenchError):
    """A results or leaderboard file is malformed or incompatible."""
