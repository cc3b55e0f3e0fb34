# iam_users: IAM user name -> description and the role keys the user may assume (iamrunbook).
iam_users = {
  "your-username" = {
    description = "Account owner - full access"
    roles       = ["admin", "data_engineer", "infrastructure_admin"]
  }
  "alice@example.com" = {
    description = "Alice - Platform Engineer"
    roles       = ["data_engineer", "infrastructure_admin"]
  }
  "bob@example.com" = {
    description = "Bob - Data Engineer"
    roles       = ["data_engineer"]
  }
}
