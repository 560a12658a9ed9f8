# livecount on AWS: players -> SQS -> ingest -> sessions table -> stream -> aggregate -> counters
# table <- read (Function URL). The settings, policies, alarms and dashboard are computed (and
# validated, and tested offline) in modules/settings; this file turns them into resources.

data "aws_region" "current" {}

locals {
  s         = module.settings.settings
  functions = toset(["ingest", "aggregate", "read"])

  function_names = { for f in local.functions : f => "${local.s.name_prefix}-${f}" }

  # `make package` puts the zips here (repo-relative: this module is infra/terraform).
  zips = {
    ingest    = coalesce(var.ingest_zip, "${path.module}/../../target/lambda/ingest/bootstrap.zip")
    aggregate = coalesce(var.aggregate_zip, "${path.module}/../../target/lambda/aggregate/bootstrap.zip")
    read      = coalesce(var.read_zip, "${path.module}/../../target/lambda/read/bootstrap.zip")
  }
}

module "settings" {
  source = "./modules/settings"

  name_prefix                           = var.name_prefix
  sessions_table                        = var.sessions_table
  counters_table                        = var.counters_table
  window_seconds                        = var.window_seconds
  bucket_seconds                        = var.bucket_seconds
  grace_seconds                         = var.grace_seconds
  session_shards                        = var.session_shards
  max_concurrent_writes                 = var.max_concurrent_writes
  log_level                             = var.log_level
  point_in_time_recovery                = var.point_in_time_recovery
  deletion_protection                   = var.deletion_protection
  max_receive_count                     = var.max_receive_count
  ingest_batch_size                     = var.ingest_batch_size
  ingest_max_batching_window_seconds    = var.ingest_max_batching_window_seconds
  ingest_max_concurrency                = var.ingest_max_concurrency
  ingest_timeout_seconds                = var.ingest_timeout_seconds
  aggregate_batch_size                  = var.aggregate_batch_size
  aggregate_max_batching_window_seconds = var.aggregate_max_batching_window_seconds
  aggregate_retry_attempts              = var.aggregate_retry_attempts
  aggregate_max_record_age_seconds      = var.aggregate_max_record_age_seconds
  aggregate_parallelization_factor      = var.aggregate_parallelization_factor
  aggregate_timeout_seconds             = var.aggregate_timeout_seconds
  read_timeout_seconds                  = var.read_timeout_seconds
  public_read                           = var.public_read
  sessions_warm_write_units             = var.sessions_warm_write_units
  counters_warm_write_units             = var.counters_warm_write_units
  allowed_origins                       = var.allowed_origins
  ingest_endpoint                       = var.ingest_endpoint
  ingest_cors_origins                   = var.ingest_cors_origins
  ingest_throttle_rate                  = var.ingest_throttle_rate
  ingest_throttle_burst                 = var.ingest_throttle_burst
  token_secret_arn                      = var.token_secret_arn
  token_secret_kms_key_arn              = var.token_secret_kms_key_arn
  expected_stream_shards                = var.expected_stream_shards
  counter_ttl_days                      = var.counter_ttl_days
  architecture                          = var.architecture
  memory_size                           = var.memory_size
  reserved_concurrency                  = var.reserved_concurrency
  log_retention_days                    = var.log_retention_days
  iterator_age_alarm_seconds            = var.iterator_age_alarm_seconds
  invalid_messages_threshold            = var.invalid_messages_threshold

  resources = {
    region                       = data.aws_region.current.region
    sessions_table_arn           = aws_dynamodb_table.sessions.arn
    sessions_stream_arn          = aws_dynamodb_table.sessions.stream_arn
    counters_table_arn           = aws_dynamodb_table.counters.arn
    events_queue_arn             = aws_sqs_queue.events.arn
    events_queue_name            = aws_sqs_queue.events.name
    dead_letter_queue_arn        = aws_sqs_queue.dead_letter.arn
    dead_letter_queue_url        = aws_sqs_queue.dead_letter.url
    dead_letter_queue_name       = aws_sqs_queue.dead_letter.name
    aggregate_failure_queue_arn  = aws_sqs_queue.aggregate_failures.arn
    aggregate_failure_queue_name = aws_sqs_queue.aggregate_failures.name
    log_group_arns               = { for f, g in aws_cloudwatch_log_group.function : f => g.arn }
    function_names               = local.function_names
  }
}

# ---- Tables ---------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "sessions" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key (aws/dynamodb). The data is viewer session ids and counts; a customer managed key would add key-policy management and KMS cost on every request path without a matching threat.
  name         = local.s.sessions_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "PK"
  range_key    = "SK"

  attribute {
    name = "PK"
    type = "S"
  }
  attribute {
    name = "SK"
    type = "S"
  }

  ttl {
    attribute_name = "expDate"
    enabled        = true
  }

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  point_in_time_recovery {
    enabled = local.s.point_in_time_recovery
  }

  server_side_encryption {
    enabled = true
  }

  # Warm throughput: what the table serves at once (reads at the on-demand default).
  dynamic "warm_throughput" {
    for_each = local.s.sessions_warm_write_units == null ? [] : [local.s.sessions_warm_write_units]
    content {
      read_units_per_second  = 12000
      write_units_per_second = warm_throughput.value
    }
  }

  deletion_protection_enabled = local.s.deletion_protection
  tags                        = var.tags
}

resource "aws_dynamodb_table" "counters" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key (aws/dynamodb). The data is viewer counts; a customer managed key would add key-policy management and KMS cost without a matching threat.
  name         = local.s.counters_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "PK"
  range_key    = "SK"

  attribute {
    name = "PK"
    type = "S"
  }
  attribute {
    name = "SK"
    type = "S"
  }

  point_in_time_recovery {
    enabled = local.s.point_in_time_recovery
  }

  server_side_encryption {
    enabled = true
  }

  # Counters of ended streams expire counter_ttl_days after their last update.
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }

  # Warm throughput: what the table serves at once (reads at the on-demand default).
  dynamic "warm_throughput" {
    for_each = local.s.counters_warm_write_units == null ? [] : [local.s.counters_warm_write_units]
    content {
      read_units_per_second  = 12000
      write_units_per_second = warm_throughput.value
    }
  }

  deletion_protection_enabled = local.s.deletion_protection
  tags                        = var.tags
}

# ---- Queues ---------------------------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${local.s.name_prefix}-events-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, the maximum
  tags                      = var.tags
}

# Players send their events here.
resource "aws_sqs_queue" "events" {
  name                       = "${local.s.name_prefix}-events"
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = module.settings.queue_visibility_timeout_seconds
  message_retention_seconds  = module.settings.queue_retention_seconds
  max_message_size           = 262144 # the handlers accept bodies up to 256 KiB; SQS refuses larger ones
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = local.s.max_receive_count
  })
  tags = var.tags
}

# Where the sessions stream mapping reports the batches it gave up on.
resource "aws_sqs_queue" "aggregate_failures" {
  name                      = "${local.s.name_prefix}-aggregate-failures"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600
  tags                      = var.tags
}

# TLS only. The Deny names every SQS action ("sqs:*"): denying all of them is its point.
resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    events             = aws_sqs_queue.events
    dead_letter        = aws_sqs_queue.dead_letter
    aggregate_failures = aws_sqs_queue.aggregate_failures
  }
  queue_url = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = "sqs:*"
      Resource  = each.value.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

# ---- Functions ------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data at rest by default; the logs hold stream and session ids and error reasons, no secrets, so a customer managed KMS key is not required.
  #checkov:skip=CKV_AWS_338:Operational logs only, 14 days by default (log_retention_days); session ids are personal-ish data, so shorter retention is deliberate. The durable numbers live in the counters table and CloudWatch metrics.
  for_each          = local.functions
  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = local.s.log_retention_days
  tags              = var.tags
}

# One role per function: only the actions it calls, only on its own resources.
resource "aws_iam_role" "function" {
  for_each    = local.functions
  name        = local.function_names[each.key]
  description = "livecount ${each.key} function"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "livecount"
  role     = aws_iam_role.function[each.key].id
  policy   = module.settings.policies[each.key]
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117:No VPC: the functions only call DynamoDB and SQS public AWS endpoints over TLS with IAM auth; a VPC would add NAT or endpoint cost and cold-start time for no isolation gain.
  #checkov:skip=CKV_AWS_116:A function DLQ only serves asynchronous invocations; these functions are invoked synchronously (SQS and DynamoDB Streams event source mappings, Function URL). Failures go to the events DLQ and the stream on-failure queue.
  #checkov:skip=CKV_AWS_173:The environment holds only table names and numeric tuning values, no secrets; Lambda encrypts it at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:Code signing is not configured: the zips are built from source by make package in the deploying pipeline. Add an AWS Signer profile if your organisation requires signed artifacts.
  #checkov:skip=CKV_AWS_50:X-Ray tracing needs xray:PutTraceSegments on Resource "*" (no resource-level permissions), which this least-privilege design forbids; the handlers emit EMF metrics and logs instead.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is opt-in (reserved_concurrency, default none: -1): reserving takes capacity from the account pool and can fail on accounts with a low limit; ingest can be capped with ingest_max_concurrency, aggregate is bounded by stream shards x parallelization factor.
  for_each      = local.functions
  function_name = local.function_names[each.key]
  description   = "livecount ${each.key}"
  role          = aws_iam_role.function[each.key].arn

  runtime       = "provided.al2023"
  architectures = [local.s.architecture]
  handler       = "bootstrap"

  filename         = local.zips[each.key]
  source_code_hash = filebase64sha256(local.zips[each.key])

  memory_size                    = local.s.memory_size
  timeout                        = local.s.timeout_seconds[each.key]
  reserved_concurrent_executions = lookup(local.s.reserved_concurrency, each.key, -1)

  environment {
    variables = each.key == "ingest" ? module.settings.ingest_environment : module.settings.environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags = var.tags

  # The event source mappings check the role's permissions when they are created.
  depends_on = [aws_iam_role_policy.function]
}

# ---- Triggers -------------------------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "ingest" {
  event_source_arn                   = aws_sqs_queue.events.arn
  function_name                      = aws_lambda_function.function["ingest"].arn
  batch_size                         = local.s.ingest_batch_size
  maximum_batching_window_in_seconds = local.s.ingest_max_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = local.s.ingest_max_concurrency == null ? [] : [local.s.ingest_max_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }
}

resource "aws_lambda_event_source_mapping" "aggregate" {
  event_source_arn                   = aws_dynamodb_table.sessions.stream_arn
  function_name                      = aws_lambda_function.function["aggregate"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = local.s.aggregate_batch_size
  maximum_batching_window_in_seconds = local.s.aggregate_max_batching_window_seconds
  # No bisecting: the function reports failures instead of failing, naming the batch's first
  # record, so every retry starts where the receipts are named (docs/design.md section 4).
  bisect_batch_on_function_error = false
  function_response_types        = ["ReportBatchItemFailures"]
  maximum_retry_attempts         = local.s.aggregate_retry_attempts
  maximum_record_age_in_seconds  = local.s.aggregate_max_record_age_seconds
  parallelization_factor         = local.s.aggregate_parallelization_factor

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.aggregate_failures.arn
    }
  }
}

# ---- Read API -------------------------------------------------------------------------------------

resource "aws_lambda_function_url" "read" {
  function_name      = aws_lambda_function.function["read"].function_name
  authorization_type = module.settings.function_url.authorization_type

  dynamic "cors" {
    for_each = module.settings.function_url.cors == null ? [] : [module.settings.function_url.cors]
    content {
      allow_origins = cors.value.allow_origins
      allow_methods = cors.value.allow_methods
      max_age       = cors.value.max_age
    }
  }
}

# public_read: anyone may GET the counts through the URL (and only through it). Since October 2025
# a URL needs both statements. The provider also adds its own, untracked copies when it creates a
# URL with auth type NONE; these tracked ones go away when public_read is turned off.
resource "aws_lambda_permission" "public_url" {
  #checkov:skip=CKV_AWS_301:Exists only when public_read = true was chosen explicitly: the read API only returns viewer counts (GET), CORS is limited to allowed_origins, and the function's role can only GetItem/Scan the counters table.
  count                  = local.s.public_read ? 1 : 0
  statement_id           = "LivecountPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.function["read"].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "public_url_invoke" {
  #checkov:skip=CKV_AWS_301:Exists only when public_read = true; invoked_via_function_url limits it to calls through the Function URL (no direct Invoke API access).
  count                    = local.s.public_read ? 1 : 0
  statement_id             = "LivecountPublicFunctionUrlInvoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.function["read"].function_name
  principal                = "*"
  invoked_via_function_url = true
}

# ---- Ingest endpoint (players) --------------------------------------------------------------------
# POST /events sends the request body to the events queue: no Lambda in the path.

locals {
  ingest_api = module.settings.ingest_api
}

resource "aws_apigatewayv2_api" "ingest" {
  #checkov:skip=CKV_AWS_309:POST /events is the public ingest endpoint players (browsers, TVs) post to without AWS credentials; it can only send a message to the events queue, is throttled per stage, and sessions can be signed (token_secret_arn).
  count         = local.ingest_api == null ? 0 : 1
  name          = "${local.s.name_prefix}-ingest"
  description   = "livecount: players POST their events to /events; the body goes to the events queue"
  protocol_type = "HTTP"

  cors_configuration {
    allow_origins = local.ingest_api.cors.allow_origins
    allow_methods = local.ingest_api.cors.allow_methods
    allow_headers = local.ingest_api.cors.allow_headers
    max_age       = local.ingest_api.cors.max_age
  }

  tags = var.tags
}

resource "aws_iam_role" "ingest_api" {
  count       = local.ingest_api == null ? 0 : 1
  name        = "${local.s.name_prefix}-ingest-api"
  description = "livecount ingest endpoint: send events to the queue"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "apigateway.amazonaws.com" }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "ingest_api" {
  count  = local.ingest_api == null ? 0 : 1
  name   = "livecount"
  role   = aws_iam_role.ingest_api[0].id
  policy = local.ingest_api.policy
}

resource "aws_apigatewayv2_integration" "ingest" {
  count                  = local.ingest_api == null ? 0 : 1
  api_id                 = aws_apigatewayv2_api.ingest[0].id
  integration_type       = local.ingest_api.integration.integration_type
  integration_subtype    = local.ingest_api.integration.integration_subtype
  credentials_arn        = aws_iam_role.ingest_api[0].arn
  payload_format_version = local.ingest_api.integration.payload_format_version
  request_parameters = {
    QueueUrl    = aws_sqs_queue.events.url
    MessageBody = local.ingest_api.integration.message_body
  }
}

resource "aws_apigatewayv2_route" "ingest" {
  #checkov:skip=CKV_AWS_309:The players' public ingest endpoint (see aws_apigatewayv2_api.ingest).
  count     = local.ingest_api == null ? 0 : 1
  api_id    = aws_apigatewayv2_api.ingest[0].id
  route_key = local.ingest_api.route_key
  target    = "integrations/${aws_apigatewayv2_integration.ingest[0].id}"
}

resource "aws_cloudwatch_log_group" "ingest_api" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data at rest with AWS managed keys; a customer managed KMS key adds cost and key policy management for operational logs.
  #checkov:skip=CKV_AWS_338:Operational access logs, retained log_retention_days (default 14); shorter retention is deliberate.
  count             = local.ingest_api == null ? 0 : 1
  name              = "/aws/apigateway/${local.s.name_prefix}-ingest"
  retention_in_days = local.s.log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "ingest" {
  count       = local.ingest_api == null ? 0 : 1
  api_id      = aws_apigatewayv2_api.ingest[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = local.ingest_api.throttle.rate_limit
    throttling_burst_limit = local.ingest_api.throttle.burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.ingest_api[0].arn
    format          = local.ingest_api.access_log_format
  }

  tags = var.tags
}
