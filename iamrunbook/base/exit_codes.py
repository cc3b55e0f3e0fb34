"""The exit codes of `iamrunbook`, after `terraform plan -detailed-exitcode`: scheduled jobs depend on them.

0 converged; 2 a plan-only run with changes an apply would make; 1 an error, a refused safety check, or a problem
no apply can fix (runs/outcome.py decides which).
"""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PENDING = 2
