"""The package's one named logger."""

import logging

logger = logging.getLogger("iamrunbook")
