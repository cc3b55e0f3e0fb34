"""The ground floor: errors, the logger, names and ARNs, progress, display helpers and the run-folder records.

It imports nothing of the package, so every other layer can lean on it.
"""
