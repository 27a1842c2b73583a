"""Exception hierarchy. Every error a user can cause is a NeurodeployError whose message
names the file, node or shape at fault; the CLI prints it as one ``error: ...`` line."""


class NeurodeployError(Exception):
    """Base class of every error neurodeploy raises on purpose."""


class GraphError(NeurodeployError):
    """The NIR graph is malformed: unknown node, dangling edge, shape mismatch, bad parameter."""


class UnsupportedError(NeurodeployError):
    """The graph is valid but the chosen target cannot express part of it."""


class FitError(NeurodeployError):
    """The graph does not fit the hardware resources requested."""


class InputError(NeurodeployError):
    """User input (file, array, option) is missing or malformed."""


class ProfileError(InputError):
    """A hardware profile is missing a field, has a wrong unit or an invalid value."""
