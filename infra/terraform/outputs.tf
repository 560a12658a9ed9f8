output "ingest_url" {
  description = "Players POST their events here (application/json or text/plain); null when ingest_endpoint is false."
  value       = length(aws_apigatewayv2_api.ingest) == 0 ? null : "${aws_apigatewayv2_api.ingest[0].api_endpoint}/events"
}

output "events_queue_url" {
  description = "Players send their events here (sqs:SendMessage)."
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

output "counters_table_arn" {
  description = "The counters table's ARN, for read-only dashboard policies (dynamodb:GetItem)."
  value       = aws_dynamodb_table.counters.arn
}

output "read_url" {
  description = "The read API: GET /api/streams/{id}, GET /api/streams, GET /."
  value       = aws_lambda_function_url.read.function_url
}

output "function_names" {
  description = "The three functions, by role."
  value       = { for f, fn in aws_lambda_function.function : f => fn.function_name }
}

output "role_arns" {
  description = "The three functions' roles."
  value       = { for f, r in aws_iam_role.function : f => r.arn }
}

output "environment" {
  description = "The environment of all three functions."
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
