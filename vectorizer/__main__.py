"""``python -m vectorizer``: see :mod:`vectorizer._cli`."""

import sys

from ._cli import main

sys.exit(main())
