"""``python -m rtafast.cli``: the ``rtafast`` command."""

import sys

from . import main

sys.exit(main())
