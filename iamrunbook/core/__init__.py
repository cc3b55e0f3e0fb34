"""The pure runbook: spec, parameters, the inventory model, effective access, changes, plan, safe order, simulator,
legacy-migration analysis, CIS checks and Terraform rendering. No AWS call and no UI: data in, data out.
"""
