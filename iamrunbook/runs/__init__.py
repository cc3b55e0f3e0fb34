"""Run folders as an audit record: the manifest and its hash chain, the audit, archives, plan files, outcomes."""
