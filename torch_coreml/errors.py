"""Every error torch_coreml raises on purpose derives from `TorchCoreMLError`.

Callers can catch the base class; each subclass names the layer that found the problem so a message
can say what was expected and what came without a traceback into our internals.
"""


class TorchCoreMLError(Exception):
    """Base class of all torch_coreml errors."""


class PackageError(TorchCoreMLError):
    """A `.mlpackage` (manifest, model spec or weight blob) is missing, corrupt or unsupported."""


class BlobError(PackageError):
    """The weight blob file is malformed: bad header, sentinel, offset, size or dtype."""


class MILTypeError(TorchCoreMLError):
    """A MIL operation received inputs whose types its catalogue entry does not accept."""


class VerificationError(TorchCoreMLError):
    """A MIL program breaks a structural rule (dangling reference, duplicate name, bad output)."""


class UnsupportedOpError(TorchCoreMLError):
    """A program uses a MIL op or an op version the catalogue or deployment target does not have."""


class RuntimeInputError(TorchCoreMLError):
    """An input given to a converted model does not match its declared name, shape or dtype."""


class ConversionError(TorchCoreMLError):
    """A torch graph could not be lowered to MIL."""


class RuntimeUnavailableError(TorchCoreMLError):
    """The requested runtime cannot run on this machine (e.g. runtime="coreml" off macOS)."""


class ExecutorError(TorchCoreMLError):
    """An executor failed to compile, load or run a package (the cause is chained)."""
