"""``python -m cod_reference``: the ``cod`` command line."""
import sys

from .cli import main

sys.exit(main())
