output "functions" {
  description = "The functions this deployment has: ingest, aggregate, read, and edge with public_edge."
  value       = local.functions
}

output "environment" {
  description = "The environment every function shares: the LIVECOUNT_* variables and RUST_LOG."
  value       = local.environment
}

output "environments" {
  description = "Each function's environment: the common one; ingest adds LIVECOUNT_DEAD_LETTER_QUEUE_URL; the edge adds LIVECOUNT_CORS_ORIGINS, LIVECOUNT_TOKEN_SECRET_ARN (signed) or LIVECOUNT_UNSIGNED=allow, and LIVECOUNT_ORIGIN_SECRET_ARN behind the flood shield."
  value       = local.environments
  precondition {
    condition     = !var.signed_sessions || local.token_secret_arn != null
    error_message = "signed sessions need a token secret: token_secret_arn, or resources.token_secret_arn for the secret the root module creates (token_secret)."
  }
  precondition {
    condition     = !local.edge_shield_enabled || local.r.origin_secret_arn != null
    error_message = "the flood shield needs resources.origin_secret_arn: the origin secret the root module creates (origin_secret)."
  }
}

output "logging" {
  description = "Each function's logging config: log format and, for JSON, the system and application log levels."
  value       = local.logging
}

output "metrics" {
  description = "The EMF metrics each handler emits (namespace livecount, dimensions Deployment and Function), as infra/contract.json lists them."
  value = {
    ingest    = local.ingest_metrics
    aggregate = local.aggregate_metrics
    edge      = local.edge_metrics
  }
}

output "token_secret" {
  description = "The token secret the root module creates (signed_sessions without token_secret_arn): name, description and how its value is generated; null otherwise."
  value       = local.token_secret
}

output "token_secret_arn" {
  description = "The secret sessions are signed with: token_secret_arn, or the one the root module created; null when signed_sessions is false."
  value       = local.token_secret_arn
}

output "edge" {
  description = "The public edge (null without public_edge): its Function URL settings and the permissions a NONE URL needs."
  value       = local.edge
}

output "origin_secret" {
  description = "The flood shield's origin secret the root module creates (edge_web_acl_arn): name, description and how its value is generated; null without the shield."
  value       = local.origin_secret
}

output "edge_shield" {
  description = "The flood shield's CloudFront distribution in front of the edge's URL (null without edge_web_acl_arn): web ACL, origin (the header that carries the origin secret), behaviour and managed policies."
  value       = local.edge_shield
}

output "edge_url" {
  description = "Where players POST their events: https://<shield domain>/events behind the flood shield, else the edge's Function URL + \"events\"; null without public_edge."
  value       = local.edge_url
  precondition {
    condition     = !var.public_edge || local.edge_url != null
    error_message = "the edge's URL needs edge_endpoints.function_url (the edge's Function URL) and, with edge_web_acl_arn, edge_endpoints.shield_domain_name (the shield distribution's domain)."
  }
}

output "badge_cdn" {
  description = "The badge's CloudFront distribution (null without badge_cdn): origin access control, origin, cache policy, behaviour and the read function's permissions for it."
  value       = local.badge_cdn
}

output "queue_retention_seconds" {
  description = "The events queue's retention: 2 x (W + B + G), or every retry (max_receive_count x visibility) if longer; at least 60 s."
  value       = local.queue_retention_seconds
}

output "queue_visibility_timeout_seconds" {
  description = "The events queue's visibility timeout: 6x the ingest timeout plus the batching window."
  value       = local.queue_visibility_timeout_seconds
}

output "policy_statements" {
  description = "Each function role's policy statements, by function."
  value       = local.policy_statements
}

output "policies" {
  description = "Each function role's policy document as JSON, by function."
  value = { for f, statements in local.policy_statements : f => jsonencode({
    Version   = "2012-10-17"
    Statement = statements
  }) }
}

output "alarms" {
  description = "The CloudWatch alarms, by key: metric, statistic, period, threshold and description."
  value       = local.alarms
}

output "dashboard_body" {
  description = "The CloudWatch dashboard as JSON."
  value       = jsonencode(local.dashboard)
}

output "function_url" {
  description = "The read API's Function URL settings: auth type (always AWS_IAM) and CORS (null when no origins are allowed)."
  value       = local.read_function_url
}

# Passed through so the root module reads every setting from one validated place.
output "settings" {
  description = "The validated settings."
  value = {
    name_prefix                           = var.name_prefix
    sessions_table                        = local.sessions_table
    counters_table                        = local.counters_table
    viewers_table                         = local.viewers_table
    point_in_time_recovery                = var.point_in_time_recovery
    deletion_protection                   = var.deletion_protection
    memory_size                           = var.memory_size
    timeout_seconds                       = local.timeouts
    reserved_concurrency                  = local.reserved_concurrency
    expected_stream_shards                = var.expected_stream_shards
    architecture                          = var.architecture
    counter_ttl_days                      = var.counter_ttl_days
    breakdowns                            = var.breakdowns
    log_retention_days                    = var.log_retention_days
    ingest_max_concurrency                = var.ingest_max_concurrency
    max_receive_count                     = var.max_receive_count
    ingest_batch_size                     = var.ingest_batch_size
    ingest_max_batching_window_seconds    = var.ingest_max_batching_window_seconds
    ingest_timeout_seconds                = var.ingest_timeout_seconds
    aggregate_batch_size                  = var.aggregate_batch_size
    aggregate_max_batching_window_seconds = var.aggregate_max_batching_window_seconds
    aggregate_retry_attempts              = var.aggregate_retry_attempts
    aggregate_max_record_age_seconds      = local.aggregate_max_record_age
    aggregate_parallelization_factor      = var.aggregate_parallelization_factor
    sessions_warm_write_units             = var.sessions_warm_write_units
    counters_warm_write_units             = var.counters_warm_write_units
    public_edge                           = var.public_edge
    signed_sessions                       = var.signed_sessions
    badge_cdn                             = var.badge_cdn
    edge_cors_origins                     = var.edge_cors_origins
    refusals_alarm_threshold              = var.refusals_alarm_threshold
    edge_web_acl_arn                      = var.edge_web_acl_arn
    iterator_age_alarm_seconds            = var.iterator_age_alarm_seconds
    queue_visibility_timeout_seconds      = local.queue_visibility_timeout_seconds
    queue_retention_seconds               = local.queue_retention_seconds
  }
}
