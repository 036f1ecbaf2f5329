"""``python -m sentinelle.cli``: the same as the ``sentinelle`` console script."""

import sys

from .main import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
