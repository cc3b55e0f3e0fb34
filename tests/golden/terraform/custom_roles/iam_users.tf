# The runbook's resources under the addresses it reports: the Assume<Role>Policy per role, the users
# and their attachments. Names and tags are the ones iamrunbook writes, so imports show no changes.
locals {
  # role key -> IAM role name (the roles this configuration grants)
  assumable_roles = {
    "ops"       = "Ops.Role-1"
    "read_only" = "ReadOnly+Role=2@x"
  }

  # role key -> the managed policy that allows assuming the role
  assume_role_policies = {
    "ops"       = { name = "AssumeOps.Role-1Policy", description = "Allows assuming Ops.Role-1" }
    "read_only" = { name = "AssumeReadOnly+Role=2@xPolicy", description = "Allows assuming ReadOnly+Role=2@x" }
  }

  # "<user>/<role key>" -> {user, role_key}: one policy attachment per granted role
  user_role_attachments = {
    for pair in flatten([
      for user_name, user in var.iam_users : [
        for role_key in user.roles : { user = user_name, role_key = role_key }
      ]
    ]) : "${pair.user}/${pair.role_key}" => pair
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume_role" {
  for_each = local.assumable_roles

  statement {
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${each.value}"]
  }
}

resource "aws_iam_policy" "assume_role" {
  for_each = local.assumable_roles

  name        = local.assume_role_policies[each.key].name
  description = local.assume_role_policies[each.key].description
  policy      = data.aws_iam_policy_document.assume_role[each.key].json
  tags = {
    Name = local.assume_role_policies[each.key].name
  }
}

resource "aws_iam_user" "users" {
  for_each = var.iam_users

  name          = each.key
  force_destroy = true # offboarding removes keys, MFA and the console password too
  tags = {
    Name        = each.key
    Description = each.value.description
    Roles       = join(" ", each.value.roles)
    ManagedBy   = "iamrunbook"
  }
}

resource "aws_iam_user_policy_attachment" "user_roles" {
  for_each = local.user_role_attachments

  user       = aws_iam_user.users[each.value.user].name
  policy_arn = aws_iam_policy.assume_role[each.value.role_key].arn
}
