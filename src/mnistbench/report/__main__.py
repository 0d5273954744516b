"""`python -m mnistbench.report`: the same as the mnistbench-report command."""

import sys

from mnistbench.report.cli import main

sys.exit(main())
