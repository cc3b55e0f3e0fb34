# iam_users: IAM user name -> description and the role keys the user may assume (iamrunbook).
iam_users = {}
