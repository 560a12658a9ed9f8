variable "region" {
  description = "The AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "signed_sessions" {
  description = "Only signed sessions count (the module creates the token secret); false lets anyone who can reach the edge add viewers."
  type        = bool
  default     = true
}

variable "allowed_origins" {
  description = "Origins allowed by CORS to GET the read API with signed requests, e.g. [\"https://dashboard.example.com\"]."
  type        = list(string)
  default     = []
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when an alarm fires."
  type        = list(string)
  default     = []
}
