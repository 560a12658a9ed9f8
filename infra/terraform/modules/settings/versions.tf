# Pure computation: no provider, so its tests run offline (`terraform test` needs no download).
terraform {
  # 1.9: validation conditions that refer to other variables.
  required_version = ">= 1.9"
}
