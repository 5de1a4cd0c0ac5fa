"""``python -m judgeflow.cli``: the same command as ``judgeflow``."""

import sys

from judgeflow.cli import main

sys.exit(main())
