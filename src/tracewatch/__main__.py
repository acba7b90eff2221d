"""``python -m tracewatch``: the ``tracewatch`` command."""

import sys

from .cli.main import main

sys.exit(main())
