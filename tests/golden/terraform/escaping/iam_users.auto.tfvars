# iam_users: IAM user name -> description and the role keys the user may assume (iamrunbook).
iam_users = {
  "say\"hi" = {
    description = "a \"quoted\" $${var.secret} %%{ if true }x%%{ endif } \\ back"
    roles       = ["quote"]
  }
  "line\u2028sep" = {
    description = "two\nlines\ttab\r😀 é 中"
    roles       = ["tmpl", "slash"]
  }
  "$$${already}" = {
    description = "%%%{already} $$ %% $"
    roles       = []
  }
}
