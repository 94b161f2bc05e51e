"""``python -m torus_plugins.cli``: the same as the ``torus-plugins`` command."""

import sys

from ._parser import main

sys.exit(main())
