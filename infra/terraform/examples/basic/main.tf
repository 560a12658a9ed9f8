# The smallest complete deployment: `make package` first (it builds the four zips), then
#   terraform init && terraform apply
# from this folder. Every module variable is optional; the ones below are the usual knobs.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.29, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}

module "livecount" {
  source = "../.."

  # LIVECOUNT_* settings (these are the defaults).
  sessions_table = "livecount-sessions"
  counters_table = "livecount-counters"
  window_seconds = 15
  bucket_seconds = 5
  grace_seconds  = 60
  session_shards = 8

  # Players post to the public edge (edge_url), signed sessions by default: the module creates
  # the token secret (token_secret_arn) your backend signs tokens with.
  signed_sessions = var.signed_sessions

  # The read API is AWS_IAM; the dashboard's origin may call it with signed requests. The badge
  # is public, through CloudFront (badge_url).
  allowed_origins = var.allowed_origins

  alarm_actions = var.alarm_actions
  tags          = { project = "livecount" }
}
