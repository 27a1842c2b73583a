"""`python -m neurodeploy` = the `neurodeploy` command."""

import sys

from neurodeploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
