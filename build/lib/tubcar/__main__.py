"""`python -m tubcar COMMAND ...`, the same as the installed `tubcar` command."""

import sys

from tubcar.cli import main

sys.exit(main())
