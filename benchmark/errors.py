"""The exception hierarchy. Every error a user can cause derives from `MedSynBenchError`.

MedSynBenchError                 a user-facing problem: printed as one message, no traceback;
                                 ``problems``: one line per problem when it reports several
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

from collections.abc import Sequence

__all__ = [
    "DataError",
    "DuplicatePluginError",
    "ExecutorError",
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
    """Base of every error caused by user input or environment (not by a bug).

    ``problems`` holds one line per problem (key path, what is wrong, the fix) when one error
    reports several — a suite with several bad keys raises once, listing them all, so one run
    of ``validate`` shows every one. A plain message is its own single problem.
    """

    def __init__(self, message: str = "", problems: Sequence[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or ((message,) if message else ())
        super().__init__(message or "\n".join(self.problems))


class SuiteError(MedSynBenchError):
    """A suite file cannot be parsed or does not validate (``problems``: every one found)."""


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


class ExecutorError(MedSynBenchError):
    """An executor cannot run the plan: a missing extra, an unreachable cluster, no GPU."""
