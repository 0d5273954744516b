"""`python -m mnistbench`: the same as the `mnistbench` command."""

import sys

from mnistbench.cli import main

sys.exit(main())
