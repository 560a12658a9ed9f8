output "edge_url" {
  description = "Players POST their events here (one player's events per request): through the flood shield with edge_web_acl_arn, else the edge's Function URL; null without public_edge."
  value       = module.settings.edge_url
}

output "badge_url" {
  description = "The badge's CDN: GET <badge_url>/api/streams/{id}/viewers; null without badge_cdn."
  value       = length(aws_cloudfront_distribution.badge) == 0 ? null : "https://${aws_cloudfront_distribution.badge[0].domain_name}"
}

output "token_secret_arn" {
  description = "The secret sessions are signed with (the one the module created, or token_secret_arn): the backend that issues tokens reads it. Null when signed_sessions is false."
  value       = module.settings.token_secret_arn
}

output "events_queue_url" {
  description = "Relays send batches of events here (sqs:SendMessage)."
  value       = aws_sqs_queue.events.url
}

output "events_queue_arn" {
  description = "The events queue's ARN, for producer policies."
  value       = aws_sqs_queue.events.arn
}

output "dead_letter_queue_url" {
  description = "Events that failed max_receive_count times (invalid ones among them)."
  value       = aws_sqs_queue.dead_letter.url
}

output "aggregate_failure_queue_url" {
  description = "Batches the sessions stream mapping gave up on."
  value       = aws_sqs_queue.aggregate_failures.url
}

output "sessions_table_name" {
  description = "LIVECOUNT_SESSIONS_TABLE."
  value       = aws_dynamodb_table.sessions.name
}

output "counters_table_name" {
  description = "LIVECOUNT_COUNTERS_TABLE: dashboards read one item per stream from it."
  value       = aws_dynamodb_table.counters.name
}

output "viewers_table_name" {
  description = "LIVECOUNT_VIEWERS_TABLE: the viewer markers behind unique viewers (the aggregator's only)."
  value       = aws_dynamodb_table.viewers.name
}

output "counters_table_arn" {
  description = "The counters table's ARN, for read-only dashboard policies (dynamodb:GetItem)."
  value       = aws_dynamodb_table.counters.arn
}

output "read_url" {
  description = "The read API (AWS_IAM): GET /api/streams/{id}, GET /api/streams, GET /."
  value       = aws_lambda_function_url.read.function_url
}

output "function_names" {
  description = "The functions, by role (edge only with public_edge)."
  value       = { for f, fn in aws_lambda_function.function : f => fn.function_name }
}

output "role_arns" {
  description = "The functions' roles."
  value       = { for f, r in aws_iam_role.function : f => r.arn }
}

output "environment" {
  description = "The environment every function shares (ingest and the edge add their own variables)."
  value       = module.settings.environment
}

output "alarm_names" {
  description = "The CloudWatch alarms."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name]
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
