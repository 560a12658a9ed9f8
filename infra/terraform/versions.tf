terraform {
  # 1.9: validation conditions that refer to other variables (modules/settings).
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.29: aws_lambda_permission's invoked_via_function_url (public Function URLs need
      # lambda:InvokeFunction as well as lambda:InvokeFunctionUrl since October 2025);
      # 6.x: data.aws_region's `region` attribute.
      version = ">= 6.29, < 7.0"
    }
  }
}
