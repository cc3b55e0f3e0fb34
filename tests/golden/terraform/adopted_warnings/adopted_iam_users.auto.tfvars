# Adopted from account 123456789012: every existing user and the roles they can assume today.
# Only unconditional access becomes a grant; comments name other paths and conditional access.
# Applying this spec makes every user listed here managed (tagged ManagedBy=iamrunbook): delete the
# entries the runbook should not own, e.g. service users, before using it.
# WARNING: role 'data_engineer': IAM role 'DataEngineerRole' is not in account 123456789012; nobody is granted it
# WARNING: role 'infrastructure_admin': IAM role 'InfrastructureAdminRole' is not in account 123456789012; nobody is granted it
# WARNING: skipped, the spec cannot hold this user: a,b: user names with ',' cannot carry the Name tag (AWS refuses ',' in tags)
# iam_users: IAM user name -> description and the role keys the user may assume (iamrunbook).
iam_users = {
  "dave" = {
    description = ""
    roles       = []
  }
}
