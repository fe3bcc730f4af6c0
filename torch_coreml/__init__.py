"""torch_coreml: a PyTorch-native Core ML compiler.

    cm = torch_coreml.export(torch.export.export(model, (x,)))
    y = cm(x); cm.save("model.mlpackage")
    m = torch_coreml.load("model.mlpackage")
"""

from .errors import (  # noqa: F401
    BlobError, ConversionError, ExecutorError, MILTypeError, PackageError, RuntimeInputError,
    RuntimeUnavailableError, TorchCoreMLError, UnsupportedOpError, VerificationError,
)
from .runtime import load  # noqa: F401
from .lowering.registry import register_lowering  # noqa: F401
from .lowering.unsupported import UnsupportedOpsError  # noqa: F401
from .coreml_program import CoreMLProgram  # noqa: F401
from .convert import analyze, export  # noqa: F401

__version__ = "0.1.0"
