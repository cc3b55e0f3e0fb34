"""`python -m iamrunbook` is the `iamrunbook` command."""

import sys

from iamrunbook.cli.cli import main

sys.exit(main())
