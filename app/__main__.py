"""``python -m app`` is the ``sdscope`` command."""

import sys

from app.cli import main

sys.exit(main())
