"""``python -m bertclf``: the same as the ``bertclf`` command (torchrun and accelerate launch start modules)."""

import sys

from bertclf.cli import main

sys.exit(main())
