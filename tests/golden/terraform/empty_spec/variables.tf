variable "iam_users" {
  description = "IAM users: user name -> description and the role keys the user may assume."
  type = map(object({
    description = string
    roles       = list(string)
    # grants AWS ends by itself: sts:AssumeRole allowed only while aws:CurrentTime < until (UTC, RFC 3339)
    temporary = optional(list(object({ role = string, until = string, reason = string })), [])
  }))

  validation {
    condition = alltrue(flatten([
      for user in values(var.iam_users) : [for key in user.roles : contains(["admin", "data_engineer", "infrastructure_admin"], key)]
    ]))
    error_message = "Every role key must be one of: admin, data_engineer, infrastructure_admin."
  }

  validation {
    condition     = alltrue([for name in keys(var.iam_users) : can(regex("^[A-Za-z0-9_+=.@-]{1,64}$", name))])
    error_message = "User names are 1-64 letters, digits and + = . @ _ - (no ',': the Name tag refuses it)."
  }

  validation {
    condition     = alltrue([for user in values(var.iam_users) : can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]*$", user.description)) && length(user.description) <= 256])
    error_message = "Descriptions are tag values: at most 256 letters, digits, spaces and _ . : / = + - @."
  }
}
