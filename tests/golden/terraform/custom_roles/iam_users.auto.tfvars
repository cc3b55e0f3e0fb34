# iam_users: IAM user name -> description and the role keys the user may assume (iamrunbook).
iam_users = {
  "a+b=c@d.e" = {
    description = "Zoë Ærø straße 中文 Ω \u00a0\u2009\u3000\u2028\u2029 ² ٣ Ⅻ ½ _ . : / = + - @"
    roles       = ["ops", "read_only"]
  }
  "UPPER_lower-09" = {
    description = ""
    roles       = []
  }
  "@" = {
    description = "emoji-free: Ω"
    roles       = ["read_only"]
  }
}
