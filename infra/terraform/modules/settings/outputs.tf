output "environment" {
  description = "The environment of all three functions: the LIVECOUNT_* variables and RUST_LOG."
  value       = local.environment
}

output "ingest_environment" {
  description = "The ingest function's environment: the common one, plus LIVECOUNT_TOKEN_SECRET_ARN when sessions are signed."
  value       = local.ingest_environment
}

output "ingest_api" {
  description = "The players' endpoint (null when ingest_endpoint is false): POST /events -> SQS SendMessage with the body as it is."
  value = !var.ingest_endpoint ? null : {
    route_key = "POST /events"
    integration = {
      integration_type       = "AWS_PROXY"
      integration_subtype    = "SQS-SendMessage"
      payload_format_version = "1.0"
      # The request parameters are QueueUrl (the events queue) and MessageBody: the body as it is.
      message_body = "$request.body"
    }
    cors = {
      allow_origins = var.ingest_cors_origins
      allow_methods = ["POST"]
      allow_headers = ["content-type"]
      max_age       = 600
    }
    throttle = { rate_limit = var.ingest_throttle_rate, burst_limit = var.ingest_throttle_burst }
    policy = jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Sid      = "SendEvents"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = local.r.events_queue_arn
      }]
    })
    access_log_format = jsonencode({
      requestId        = "$context.requestId"
      ip               = "$context.identity.sourceIp"
      requestTime      = "$context.requestTime"
      routeKey         = "$context.routeKey"
      status           = "$context.status"
      responseLength   = "$context.responseLength"
      integrationError = "$context.integrationErrorMessage"
    })
  }
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
  description = "The read API's Function URL settings: auth type and CORS (null when no origins are allowed)."
  value = {
    authorization_type = var.public_read ? "NONE" : "AWS_IAM"
    cors = length(var.allowed_origins) == 0 ? null : {
      allow_origins = var.allowed_origins
      allow_methods = ["GET"]
      max_age       = 3600
    }
  }
}

# Passed through so the root module reads every setting from one validated place.
output "settings" {
  description = "The validated settings."
  value = {
    name_prefix                           = var.name_prefix
    sessions_table                        = local.sessions_table
    counters_table                        = local.counters_table
    point_in_time_recovery                = var.point_in_time_recovery
    deletion_protection                   = var.deletion_protection
    memory_size                           = var.memory_size
    timeout_seconds                       = local.timeouts
    reserved_concurrency                  = local.reserved_concurrency
    expected_stream_shards                = var.expected_stream_shards
    architecture                          = var.architecture
    counter_ttl_days                      = var.counter_ttl_days
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
    public_read                           = var.public_read
    sessions_warm_write_units             = var.sessions_warm_write_units
    counters_warm_write_units             = var.counters_warm_write_units
    ingest_throttle_rate                  = var.ingest_throttle_rate
    ingest_throttle_burst                 = var.ingest_throttle_burst
    iterator_age_alarm_seconds            = var.iterator_age_alarm_seconds
    queue_visibility_timeout_seconds      = local.queue_visibility_timeout_seconds
    queue_retention_seconds               = local.queue_retention_seconds
  }
}
