"""The `iamrunbook` command: the papermill runner, the many-accounts fan-out and its accounts file, and the
runner's own least-privilege policy. Everything but the UI is below it.
"""

from iamrunbook.cli.cli import main

__all__ = ["main"]
