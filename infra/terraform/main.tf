# livecount on AWS: players -> [CloudFront + AWS WAF, the optional flood shield] -> edge (public
# Function URL) -> sessions table -> stream -> aggregate
# -> counters table <- read (Function URL, AWS_IAM) <- CloudFront (the badge). Relays send batches
# to SQS -> ingest -> sessions table. The settings, policies, alarms and dashboard, and which
# optional resources exist, are computed (and validated, and tested offline) in modules/settings;
# this file turns them into resources.

data "aws_region" "current" {}

locals {
  s         = module.settings.settings
  functions = toset(module.settings.functions)

  function_names = { for f in local.functions : f => "${local.s.name_prefix}-${f}" }

  # `make package` puts the zips here (repo-relative: this module is infra/terraform).
  zips = {
    ingest    = coalesce(var.ingest_zip, "${path.module}/../../target/lambda/ingest/bootstrap.zip")
    aggregate = coalesce(var.aggregate_zip, "${path.module}/../../target/lambda/aggregate/bootstrap.zip")
    read      = coalesce(var.read_zip, "${path.module}/../../target/lambda/read/bootstrap.zip")
    edge      = coalesce(var.edge_zip, "${path.module}/../../target/lambda/edge/bootstrap.zip")
  }

  edge          = module.settings.edge
  token_secret  = module.settings.token_secret
  origin_secret = module.settings.origin_secret
  edge_shield   = module.settings.edge_shield
  badge_cdn     = module.settings.badge_cdn
}

module "settings" {
  source = "./modules/settings"

  name_prefix                           = var.name_prefix
  sessions_table                        = var.sessions_table
  counters_table                        = var.counters_table
  viewers_table                         = var.viewers_table
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
  edge_timeout_seconds                  = var.edge_timeout_seconds
  sessions_warm_write_units             = var.sessions_warm_write_units
  counters_warm_write_units             = var.counters_warm_write_units
  allowed_origins                       = var.allowed_origins
  badge_cdn                             = var.badge_cdn
  public_edge                           = var.public_edge
  edge_cors_origins                     = var.edge_cors_origins
  signed_sessions                       = var.signed_sessions
  token_secret_arn                      = var.token_secret_arn
  token_secret_kms_key_arn              = var.token_secret_kms_key_arn
  edge_web_acl_arn                      = var.edge_web_acl_arn
  expected_stream_shards                = var.expected_stream_shards
  counter_ttl_days                      = var.counter_ttl_days
  breakdowns                            = var.breakdowns
  architecture                          = var.architecture
  memory_size                           = var.memory_size
  reserved_concurrency                  = var.reserved_concurrency
  log_retention_days                    = var.log_retention_days
  iterator_age_alarm_seconds            = var.iterator_age_alarm_seconds
  invalid_messages_threshold            = var.invalid_messages_threshold
  refusals_alarm_threshold              = var.refusals_alarm_threshold

  resources = {
    region                       = data.aws_region.current.region
    sessions_table_arn           = aws_dynamodb_table.sessions.arn
    sessions_stream_arn          = aws_dynamodb_table.sessions.stream_arn
    counters_table_arn           = aws_dynamodb_table.counters.arn
    viewers_table_arn            = aws_dynamodb_table.viewers.arn
    events_queue_arn             = aws_sqs_queue.events.arn
    events_queue_name            = aws_sqs_queue.events.name
    dead_letter_queue_arn        = aws_sqs_queue.dead_letter.arn
    dead_letter_queue_url        = aws_sqs_queue.dead_letter.url
    dead_letter_queue_name       = aws_sqs_queue.dead_letter.name
    aggregate_failure_queue_arn  = aws_sqs_queue.aggregate_failures.arn
    aggregate_failure_queue_name = aws_sqs_queue.aggregate_failures.name
    log_group_arns               = { for f, g in aws_cloudwatch_log_group.function : f => g.arn }
    function_names               = local.function_names
    token_secret_arn             = one(aws_secretsmanager_secret.token[*].arn)
    origin_secret_arn            = one(aws_secretsmanager_secret.origin[*].arn)
  }

  # Apart from `resources`: both depend on the edge function, which depends on the module.
  edge_endpoints = {
    function_url       = one(aws_lambda_function_url.edge[*].function_url)
    shield_domain_name = one(aws_cloudfront_distribution.edge_shield[*].domain_name)
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

resource "aws_dynamodb_table" "viewers" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key (aws/dynamodb). The data is hashed viewer ids and record ids; a customer managed key would add key-policy management and KMS cost without a matching threat.
  name         = local.s.viewers_table
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

  # A viewer's marker expires counter_ttl_days after their last session start.
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
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

# Relays send batches of events here (players post to the edge).
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
  #checkov:skip=CKV_AWS_117:No VPC: the functions only call DynamoDB, SQS and Secrets Manager public AWS endpoints over TLS with IAM auth; a VPC would add NAT or endpoint cost and cold-start time for no isolation gain.
  #checkov:skip=CKV_AWS_116:A function DLQ only serves asynchronous invocations; these functions are invoked synchronously (SQS and DynamoDB Streams event source mappings, Function URLs). Failures go to the events DLQ and the stream on-failure queue; the edge answers the player, which retries.
  #checkov:skip=CKV_AWS_173:The environment holds only table and queue names, numeric tuning values, CORS origins and the token and origin secrets' ARNs (never a secret: the edge reads them from Secrets Manager); Lambda encrypts it at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:Code signing is not configured: the zips are built from source by make package in the deploying pipeline. Add an AWS Signer profile if your organisation requires signed artifacts.
  #checkov:skip=CKV_AWS_50:X-Ray tracing needs xray:PutTraceSegments on Resource "*" (no resource-level permissions), which this least-privilege design forbids; the handlers emit EMF metrics and logs instead.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is set where it bounds something (aggregate: stream shards x parallelization factor; read: 10); ingest is capped by ingest_max_concurrency instead, and the edge scales with the audience (a refusal costs about a millisecond): reserving for them takes capacity from the account pool. reserved_concurrency sets any of them.
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
    variables = module.settings.environments[each.key]
  }

  # The edge logs JSON at system level WARN (no START/END/REPORT lines), application level INFO.
  logging_config {
    log_format            = module.settings.logging[each.key].log_format
    system_log_level      = module.settings.logging[each.key].system_log_level
    application_log_level = module.settings.logging[each.key].application_log_level
    log_group             = aws_cloudwatch_log_group.function[each.key].name
  }

  tags = var.tags

  # The event source mappings check the role's permissions when they are created; the edge reads
  # the token secret's and the origin secret's current versions when it starts.
  depends_on = [aws_iam_role_policy.function, aws_secretsmanager_secret_version.token, aws_secretsmanager_secret_version.origin]
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

# ---- Token secret (signed sessions) ---------------------------------------------------------------
# Created when sessions are signed and no token_secret_arn was given. Its first value is generated
# here; rotate it with `aws secretsmanager put-secret-value` (the edge accepts tokens of the
# AWSCURRENT and AWSPREVIOUS versions), which the ignored secret_string leaves alone.

resource "aws_secretsmanager_secret" "token" {
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key (aws/secretsmanager): only the edge's role may GetSecretValue it. Pass token_secret_arn (and token_secret_kms_key_arn) to use a secret under your own key.
  #checkov:skip=CKV2_AWS_57:Rotated by put-secret-value (docs/deploy.md): the edge accepts tokens of the AWSCURRENT and AWSPREVIOUS versions, so a rotation refuses no valid token; the backend that issues tokens reads the new version itself, which a rotation Lambda could not arrange.
  count       = local.token_secret == null ? 0 : 1
  name        = local.token_secret.name
  description = local.token_secret.description
  tags        = var.tags
}

data "aws_secretsmanager_random_password" "token" {
  count               = local.token_secret == null ? 0 : 1
  password_length     = local.token_secret.password_length
  exclude_punctuation = local.token_secret.exclude_punctuation
}

resource "aws_secretsmanager_secret_version" "token" {
  count         = local.token_secret == null ? 0 : 1
  secret_id     = aws_secretsmanager_secret.token[0].id
  secret_string = data.aws_secretsmanager_random_password.token[0].random_password

  # The data source draws a new password at every plan: only the first one is stored, and a
  # rotation by put-secret-value is not undone.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

# ---- The public edge (players) ---------------------------------------------------------------------

resource "aws_lambda_function_url" "edge" {
  #checkov:skip=CKV_AWS_258:The edge is the public door players (browsers, TVs) post to without AWS credentials: every request is checked (one session, a few events, a valid token by default) and refused before any write; its role can only UpdateItem the sessions table and GetItem the counters table.
  count              = local.edge == null ? 0 : 1
  function_name      = aws_lambda_function.function["edge"].function_name
  authorization_type = local.edge.function_url.authorization_type
  # No CORS configuration: the function answers CORS itself (edge_cors_origins).
}

# Anyone may call the edge through its URL (and only through it). Since October 2025 a URL needs
# both statements. The provider also adds its own, untracked copies when it creates a URL with
# auth type NONE; these tracked ones go away with public_edge.
resource "aws_lambda_permission" "edge_url" {
  #checkov:skip=CKV_AWS_301:The edge's public Function URL (see aws_lambda_function_url.edge): InvokeFunctionUrl is limited to auth type NONE URLs, InvokeFunction to calls through the Function URL (invoked_via_function_url), so there is no direct Invoke API access.
  for_each                 = local.edge == null ? {} : local.edge.permissions
  statement_id             = each.value.statement_id
  action                   = each.value.action
  function_name            = aws_lambda_function.function["edge"].function_name
  principal                = each.value.principal
  function_url_auth_type   = each.value.function_url_auth_type
  invoked_via_function_url = each.value.invoked_via_function_url
}

# ---- The flood shield (edge_web_acl_arn) --------------------------------------------------------------
# CloudFront with the deployer's web ACL in front of the edge's URL. It adds the origin secret to
# every request (x-livecount-origin); the edge refuses a request without it (RefusedBypass), so
# going round the shield to the Function URL gains a flooder nothing. The secret's first value is
# generated here and left alone afterwards, like the token secret's; to change it,
# `terraform apply -replace='aws_secretsmanager_secret_version.origin[0]'` stores a new one and
# updates the header in the same apply (edge instances read it at start: until they are replaced,
# requests carrying the new value are refused).

resource "aws_secretsmanager_secret" "origin" {
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key (aws/secretsmanager): only the edge's role may GetSecretValue it, and its value also sits in the shield distribution's origin header, which a customer managed key would not cover.
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: the value lives in this secret and in the shield's origin header, which must change together in one apply (terraform apply -replace on its version); a rotation Lambda would change only the secret and the edge would refuse every request the shield forwards.
  count       = local.origin_secret == null ? 0 : 1
  name        = local.origin_secret.name
  description = local.origin_secret.description
  tags        = var.tags
}

data "aws_secretsmanager_random_password" "origin" {
  count               = local.origin_secret == null ? 0 : 1
  password_length     = local.origin_secret.password_length
  exclude_punctuation = local.origin_secret.exclude_punctuation
}

resource "aws_secretsmanager_secret_version" "origin" {
  count         = local.origin_secret == null ? 0 : 1
  secret_id     = aws_secretsmanager_secret.origin[0].id
  secret_string = data.aws_secretsmanager_random_password.origin[0].random_password

  # The data source draws a new password at every plan: only the first one is stored (the header
  # follows this resource's value).
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_cloudfront_origin_request_policy" "edge_shield" {
  count   = local.edge_shield == null ? 0 : 1
  name    = local.edge_shield.origin_request_policy.name
  comment = local.edge_shield.origin_request_policy.comment

  headers_config {
    header_behavior = local.edge_shield.origin_request_policy.header_behavior
    headers {
      items = local.edge_shield.origin_request_policy.headers
    }
  }
  cookies_config {
    cookie_behavior = local.edge_shield.origin_request_policy.cookie_behavior
  }
  query_strings_config {
    query_string_behavior = local.edge_shield.origin_request_policy.query_string_behavior
  }
}

resource "aws_cloudfront_distribution" "edge_shield" {
  #checkov:skip=CKV2_AWS_47:The web ACL is the deployer's own (edge_web_acl_arn), created outside this module: its rules (a rate-based rule per IP against floods) are theirs to choose, and the origin is a Rust function that takes JSON events, not Log4j.
  #checkov:skip=CKV_AWS_86:The shield passes every player's heartbeat (one every 5 s per viewer): access logs would cost more than the requests; the web ACL's metrics and sampled requests show what it blocks.
  #checkov:skip=CKV_AWS_174:The default CloudFront certificate (*.cloudfront.net) is used, which CloudFront serves with its own TLS policy; add a custom domain and certificate (TLSv1.2_2021) in your own stack if you need one.
  #checkov:skip=CKV2_AWS_42:No custom domain: players post to the distribution's cloudfront.net name (edge_url); a custom certificate needs a domain this module does not own.
  #checkov:skip=CKV_AWS_310:One origin, the edge in this region; an origin group fails over GET, HEAD and OPTIONS requests only, never the players' POSTs.
  #checkov:skip=CKV_AWS_305:The edge serves only POST /events (and its CORS preflight); there is no root object.
  #checkov:skip=CKV2_AWS_32:The edge answers JSON to scripts, not pages, and sets its own headers (CORS, Cache-Control: no-store).
  #checkov:skip=CKV_AWS_374:Viewers are worldwide; restricting countries is the web ACL's job (geo match rules), which the deployer chooses.
  count           = local.edge_shield == null ? 0 : 1
  enabled         = true
  comment         = local.edge_shield.comment
  web_acl_id      = local.edge_shield.web_acl_id
  price_class     = local.edge_shield.price_class
  http_version    = local.edge_shield.http_version
  is_ipv6_enabled = local.edge_shield.is_ipv6_enabled

  origin {
    origin_id   = local.edge_shield.origin.id
    domain_name = split("/", aws_lambda_function_url.edge[0].function_url)[2] # https://<domain>/

    # The origin secret, which the edge checks on every request. CloudFront replaces a header of
    # this name that a viewer sends.
    custom_header {
      name  = local.edge_shield.origin.secret_header
      value = aws_secretsmanager_secret_version.origin[0].secret_string
    }

    custom_origin_config {
      http_port              = local.edge_shield.origin.http_port
      https_port             = local.edge_shield.origin.https_port
      origin_protocol_policy = local.edge_shield.origin.origin_protocol_policy
      origin_ssl_protocols   = local.edge_shield.origin.origin_ssl_protocols
    }
  }

  default_cache_behavior {
    target_origin_id         = local.edge_shield.origin.id
    viewer_protocol_policy   = local.edge_shield.default_cache_behavior.viewer_protocol_policy
    allowed_methods          = local.edge_shield.default_cache_behavior.allowed_methods
    cached_methods           = local.edge_shield.default_cache_behavior.cached_methods
    compress                 = local.edge_shield.default_cache_behavior.compress
    cache_policy_id          = local.edge_shield.default_cache_behavior.cache_policy_id
    origin_request_policy_id = aws_cloudfront_origin_request_policy.edge_shield[0].id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }

  tags = var.tags
}

# ---- Read API and the badge's CDN -------------------------------------------------------------------

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

# CloudFront signs every request it forwards to the read URL (origin access control) and marks it
# public (x-livecount-public): the read function then serves it the badge and nothing else.
resource "aws_cloudfront_origin_access_control" "badge" {
  count                             = local.badge_cdn == null ? 0 : 1
  name                              = local.badge_cdn.origin_access_control.name
  description                       = local.badge_cdn.origin_access_control.description
  origin_access_control_origin_type = local.badge_cdn.origin_access_control.origin_type
  signing_behavior                  = local.badge_cdn.origin_access_control.signing_behavior
  signing_protocol                  = local.badge_cdn.origin_access_control.signing_protocol
}

resource "aws_cloudfront_cache_policy" "badge" {
  count       = local.badge_cdn == null ? 0 : 1
  name        = local.badge_cdn.cache_policy.name
  comment     = local.badge_cdn.cache_policy.comment
  min_ttl     = local.badge_cdn.cache_policy.min_ttl
  default_ttl = local.badge_cdn.cache_policy.default_ttl
  max_ttl     = local.badge_cdn.cache_policy.max_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = local.badge_cdn.cache_policy.cookie_behavior
    }
    headers_config {
      header_behavior = local.badge_cdn.cache_policy.header_behavior
    }
    query_strings_config {
      query_string_behavior = local.badge_cdn.cache_policy.query_string_behavior
    }
    enable_accept_encoding_brotli = local.badge_cdn.cache_policy.enable_brotli
    enable_accept_encoding_gzip   = local.badge_cdn.cache_policy.enable_gzip
  }
}

resource "aws_cloudfront_distribution" "badge" {
  #checkov:skip=CKV_AWS_68:The badge serves public viewer counts, cached 1 s, from an origin only this distribution can call (origin access control); its misses are bounded by the cache, so a WAF ($5/month plus $0.60 per million requests) buys nothing here; attach one (web_acl_id) in your own stack as the optional flood layer.
  #checkov:skip=CKV2_AWS_47:No WAF (see CKV_AWS_68); the origin is a Rust function serving counts, not Log4j.
  #checkov:skip=CKV_AWS_86:Access logs of a public counter badge would cost more than the badge; CloudFront's metrics cover its traffic.
  #checkov:skip=CKV_AWS_174:The default CloudFront certificate (*.cloudfront.net) is used, which CloudFront serves with its own TLS policy; add a custom domain and certificate (TLSv1.2_2021) in your own stack if you need one.
  #checkov:skip=CKV2_AWS_42:No custom domain: the badge is served on the distribution's cloudfront.net name (badge_url); a custom certificate needs a domain this module does not own.
  #checkov:skip=CKV_AWS_310:One origin, the read function in this region; an origin group would need a second deployment, and a stale badge for a few seconds is the failure mode anyway.
  #checkov:skip=CKV_AWS_305:The distribution serves only /api/streams/{id}/viewers; there is no root object.
  #checkov:skip=CKV2_AWS_32:The badge is JSON read by scripts and pages, not a page itself; the read function sets its own headers (Cache-Control, ETag, CORS).
  #checkov:skip=CKV_AWS_374:Viewer counts are public and viewers are worldwide; geo restriction belongs to the player's own CDN, not the badge.
  count           = local.badge_cdn == null ? 0 : 1
  enabled         = true
  comment         = local.badge_cdn.comment
  price_class     = local.badge_cdn.price_class
  http_version    = local.badge_cdn.http_version
  is_ipv6_enabled = local.badge_cdn.is_ipv6_enabled

  origin {
    origin_id                = local.badge_cdn.origin.id
    domain_name              = split("/", aws_lambda_function_url.read.function_url)[2] # https://<domain>/
    origin_access_control_id = aws_cloudfront_origin_access_control.badge[0].id

    dynamic "custom_header" {
      for_each = local.badge_cdn.origin.custom_headers
      content {
        name  = custom_header.key
        value = custom_header.value
      }
    }

    custom_origin_config {
      http_port              = local.badge_cdn.origin.http_port
      https_port             = local.badge_cdn.origin.https_port
      origin_protocol_policy = local.badge_cdn.origin.origin_protocol_policy
      origin_ssl_protocols   = local.badge_cdn.origin.origin_ssl_protocols
    }
  }

  default_cache_behavior {
    target_origin_id       = local.badge_cdn.origin.id
    viewer_protocol_policy = local.badge_cdn.default_cache_behavior.viewer_protocol_policy
    allowed_methods        = local.badge_cdn.default_cache_behavior.allowed_methods
    cached_methods         = local.badge_cdn.default_cache_behavior.cached_methods
    compress               = local.badge_cdn.default_cache_behavior.compress
    cache_policy_id        = aws_cloudfront_cache_policy.badge[0].id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }

  tags = var.tags
}

# Only this distribution may call the read URL (and, through it, the function).
resource "aws_lambda_permission" "badge_cdn" {
  for_each                 = local.badge_cdn == null ? {} : local.badge_cdn.permissions
  statement_id             = each.value.statement_id
  action                   = each.value.action
  function_name            = aws_lambda_function.function["read"].function_name
  principal                = each.value.principal
  source_arn               = aws_cloudfront_distribution.badge[0].arn
  invoked_via_function_url = each.value.invoked_via_function_url
}
