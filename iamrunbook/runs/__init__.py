"""Run folders as records: the manifest and its hash chain, the audit check, the archive, reviewed plan files
and the outcome (exit code) of a run read back from its records.
"""
