"""``python -m wanwu.cli``: the same as the ``wanwu`` console script."""

import sys

from wanwu.cli import main

sys.exit(main())
