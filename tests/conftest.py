"""Suite-wide settings.

"auto" means the reference runtime in this suite, on Linux and on a Mac alike, so every assertion
about results and executor names holds on both; Core ML is compared through tests/executor_hook.py
(TORCH_COREML_TEST_EXECUTOR=coreml). Set TORCH_COREML_RUNTIME=auto to let "auto" choose instead.
"""

import os

from torch_coreml.runtime.executor import RUNTIME_ENV

os.environ.setdefault(RUNTIME_ENV, "reference")
