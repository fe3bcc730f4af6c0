"""`python -m torch_coreml` runs the `torch-coreml` command line."""

import sys

from .cli import main

sys.exit(main())
