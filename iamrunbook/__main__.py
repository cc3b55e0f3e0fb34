"""`python -m iamrunbook` is the `iamrunbook` command."""

import sys

from .cli import main

sys.exit(main())
