# Resources that already exist in the account: `terraform plan` adopts them instead of creating them.
# Import blocks need Terraform >= 1.5. Once applied they may stay or be deleted.
# Imported users show `+ force_destroy = true`: a Terraform-only setting, no change in AWS.

import {
  to = aws_iam_policy.assume_role["admin"]
  id = "arn:aws:iam::123456789012:policy/AssumeAdminRolePolicy"
}

import {
  to = aws_iam_policy.assume_role["data_engineer"]
  id = "arn:aws:iam::123456789012:policy/AssumeDataEngineerRolePolicy"
}

import {
  to = aws_iam_policy.assume_role["infrastructure_admin"]
  id = "arn:aws:iam::123456789012:policy/AssumeInfrastructureAdminRolePolicy"
}

import {
  to = aws_iam_user.users["your-username"]
  id = "your-username"
}

import {
  to = aws_iam_user.users["alice@example.com"]
  id = "alice@example.com"
}

import {
  to = aws_iam_user.users["bob@example.com"]
  id = "bob@example.com"
}

import {
  to = aws_iam_user_policy_attachment.user_roles["your-username/admin"]
  id = "your-username/arn:aws:iam::123456789012:policy/AssumeAdminRolePolicy"
}

import {
  to = aws_iam_user_policy_attachment.user_roles["your-username/data_engineer"]
  id = "your-username/arn:aws:iam::123456789012:policy/AssumeDataEngineerRolePolicy"
}

import {
  to = aws_iam_user_policy_attachment.user_roles["your-username/infrastructure_admin"]
  id = "your-username/arn:aws:iam::123456789012:policy/AssumeInfrastructureAdminRolePolicy"
}

import {
  to = aws_iam_user_policy_attachment.user_roles["alice@example.com/data_engineer"]
  id = "alice@example.com/arn:aws:iam::123456789012:policy/AssumeDataEngineerRolePolicy"
}

import {
  to = aws_iam_user_policy_attachment.user_roles["alice@example.com/infrastructure_admin"]
  id = "alice@example.com/arn:aws:iam::123456789012:policy/AssumeInfrastructureAdminRolePolicy"
}

import {
  to = aws_iam_user_policy_attachment.user_roles["bob@example.com/data_engineer"]
  id = "bob@example.com/arn:aws:iam::123456789012:policy/AssumeDataEngineerRolePolicy"
}
