variable "region" {
  description = "The AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "public_read" {
  description = "Open the read API to anyone (auth type NONE); needs allowed_origins."
  type        = bool
  default     = false
}

variable "allowed_origins" {
  description = "Origins allowed by CORS to GET the read API, e.g. [\"https://dashboard.example.com\"]."
  type        = list(string)
  default     = []
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when an alarm fires."
  type        = list(string)
  default     = []
}
