# Adopted from account 123456789012: every existing user and the roles they can assume today.
# Only unconditional access becomes a grant; comments name other paths and conditional access.
# Applying this spec makes every user listed here managed (tagged ManagedBy=iamrunbook): delete the
# entries the runbook should not own, e.g. service users, before using it.
# iam_users: IAM user name -> description and the role keys the user may assume (iamrunbook).
iam_users = {
  "alice@example.com" = {
    description = ""
    roles       = []
  }
  "ci-bot" = {
    description = ""
    roles       = []
  }
  # admin: via attached policy AssumeRolesPolicy
  # data_engineer: via attached policy AssumeRolesPolicy
  # infrastructure_admin: via attached policy AssumeRolesPolicy
  "your-username" = {
    description = ""
    roles       = ["admin", "data_engineer", "infrastructure_admin"]
  }
}
