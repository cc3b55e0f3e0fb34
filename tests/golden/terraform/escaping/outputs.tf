output "iam_user_arns" {
  description = "IAM user name -> user ARN."
  value       = { for name, user in aws_iam_user.users : name => user.arn }
}

output "assume_role_policy_arns" {
  description = "Role key -> ARN of the policy that allows assuming the role."
  value       = { for key, policy in aws_iam_policy.assume_role : key => policy.arn }
}
