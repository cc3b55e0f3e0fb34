# Resources that already exist in the account: `terraform plan` adopts them instead of creating them.
# Import blocks need Terraform >= 1.5. Once applied they may stay or be deleted.
# Imported users show `+ force_destroy = true`: a Terraform-only setting, no change in AWS.
# (nothing exists yet: Terraform will create everything)
