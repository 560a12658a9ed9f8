# Everything about livecount that is pure computation: which functions and optional resources
# exist, the functions' environment and logging, each role's policy, the public edge's URL and its
# flood shield, the badge's CDN, the alarms and the dashboard. The root module turns these into
# resources.

locals {
  # The edge exists only with public_edge.
  functions = concat(["ingest", "aggregate", "read"], var.public_edge ? ["edge"] : [])

  # Signed sessions need a secret: the caller's, or one the root module creates.
  create_token_secret = var.signed_sessions && var.token_secret_arn == null

  # The flood shield exists with a web ACL, in front of the edge (validation refuses one without).
  edge_shield_enabled = var.public_edge && var.edge_web_acl_arn != null

  sessions_table = coalesce(var.sessions_table, "${var.name_prefix}-sessions")
  counters_table = coalesce(var.counters_table, "${var.name_prefix}-counters")
  viewers_table  = coalesce(var.viewers_table, "${var.name_prefix}-viewers")

  # The data's life: past W + B + G after its receive time, no count depends on an event.
  data_life_seconds        = var.window_seconds + var.bucket_seconds + var.grace_seconds
  aggregate_max_record_age = coalesce(var.aggregate_max_record_age_seconds, max(60, local.data_life_seconds))
  reserved_concurrency = merge({
    aggregate = var.expected_stream_shards * var.aggregate_parallelization_factor
    read      = 10
  }, var.reserved_concurrency)

  timeouts = {
    ingest    = var.ingest_timeout_seconds
    aggregate = var.aggregate_timeout_seconds
    read      = var.read_timeout_seconds
    edge      = var.edge_timeout_seconds
  }

  environment = merge({
    LIVECOUNT_DEPLOYMENT            = var.name_prefix
    LIVECOUNT_SESSIONS_TABLE        = local.sessions_table
    LIVECOUNT_COUNTERS_TABLE        = local.counters_table
    LIVECOUNT_VIEWERS_TABLE         = local.viewers_table
    LIVECOUNT_WINDOW_SECONDS        = tostring(var.window_seconds)
    LIVECOUNT_BUCKET_SECONDS        = tostring(var.bucket_seconds)
    LIVECOUNT_GRACE_SECONDS         = tostring(var.grace_seconds)
    LIVECOUNT_SESSION_SHARDS        = tostring(var.session_shards)
    LIVECOUNT_MAX_CONCURRENT_WRITES = tostring(var.max_concurrent_writes)
    LIVECOUNT_COUNTER_TTL_DAYS      = tostring(var.counter_ttl_days)
    RUST_LOG                        = var.log_level
  }, var.breakdowns == "" ? {} : { LIVECOUNT_BREAKDOWNS = var.breakdowns })

  # The secret sessions are signed with (null when unsigned): only its ARN reaches the edge,
  # which reads the secret itself at start and every 5 minutes.
  token_secret_arn = !var.signed_sessions ? null : (var.token_secret_arn != null ? var.token_secret_arn : local.r.token_secret_arn)

  # Ingest takes the relays' batches from the queue (authenticated by IAM SendMessage): no token
  # secret. The edge verifies each player's token, or is told in so many words that it need not.
  all_environments = {
    ingest = merge(local.environment, {
      LIVECOUNT_DEAD_LETTER_QUEUE_URL = local.r.dead_letter_queue_url
    })
    aggregate = local.environment
    read      = local.environment
    edge = merge(local.environment, {
      LIVECOUNT_CORS_ORIGINS = join(",", var.edge_cors_origins)
      }, var.signed_sessions ? {
      LIVECOUNT_TOKEN_SECRET_ARN = local.token_secret_arn
      } : {
      LIVECOUNT_UNSIGNED = "allow"
      }, !local.edge_shield_enabled ? {} : {
      # Behind the shield: the edge refuses a request without the origin secret (RefusedBypass).
      LIVECOUNT_ORIGIN_SECRET_ARN = local.r.origin_secret_arn
    })
  }
  environments = { for f in local.functions : f => local.all_environments[f] }

  # The edge runs once per heartbeat: Lambda's START/END/REPORT lines would cost more in
  # CloudWatch Logs than the invocation (250 GB an hour at a million viewers). System level WARN
  # drops them; application level INFO keeps the EMF lines. The others keep plain text.
  logging = { for f in local.functions : f => f == "edge" ? {
    log_format            = "JSON"
    system_log_level      = "WARN"
    application_log_level = "INFO"
    } : {
    log_format            = "Text"
    system_log_level      = null
    application_log_level = null
  } }

  # AWS: "set the source queue's visibility timeout to at least six times the function timeout";
  # the batching window is added so a batch gathered for that long is still covered.
  queue_visibility_timeout_seconds = 6 * var.ingest_timeout_seconds + var.ingest_max_batching_window_seconds
  # Retention fitted to the data's life (an event older than W + G is dropped by ingest), with
  # every retry (max_receive_count x visibility) inside it.
  queue_retention_seconds = max(60, 2 * local.data_life_seconds, var.max_receive_count * local.queue_visibility_timeout_seconds)

  r = var.resources

  # One role per function, only the actions it calls, only on its own resources. The log
  # statement covers the streams of the function's own log group (ARN + ":*"). Computed for every
  # function; only the deployed ones' are used (the edge has no log group without public_edge).
  log_statement = { for f in keys(local.timeouts) : f => {
    Sid      = "OwnLogGroup"
    Effect   = "Allow"
    Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    Resource = "${lookup(local.r.log_group_arns, f, "none")}:*"
  } }

  all_policy_statements = {
    ingest = [
      local.log_statement["ingest"],
      {
        Sid      = "WriteSessions"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = local.r.sessions_table_arn
      },
      {
        Sid      = "ConsumeEvents"
        Effect   = "Allow"
        Action   = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
        Resource = local.r.events_queue_arn
      },
      {
        Sid      = "DeadLetterInvalidEvents"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = local.r.dead_letter_queue_arn
      },
    ]
    aggregate = [
      local.log_statement["aggregate"],
      {
        Sid      = "WriteCounters"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = local.r.counters_table_arn
      },
      {
        Sid      = "MarkViewers"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = local.r.viewers_table_arn
      },
      {
        Sid      = "ReadSessionsStream"
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        Resource = local.r.sessions_stream_arn
      },
      {
        Sid      = "ReportFailedBatches"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = local.r.aggregate_failure_queue_arn
      },
    ]
    read = [
      local.log_statement["read"],
      {
        Sid      = "ReadCounters"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"]
        Resource = local.r.counters_table_arn
      },
    ]
    # The public edge: write the player's session row, read its stream's count for the answer,
    # read the token secret (only when signed) and the shield's origin secret (only with it).
    edge = concat([
      local.log_statement["edge"],
      {
        Sid      = "WriteSessions"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = local.r.sessions_table_arn
      },
      {
        Sid      = "ReadCounts"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem"]
        Resource = local.r.counters_table_arn
      },
      ], !var.signed_sessions ? [] : [
      {
        Sid      = "ReadTokenSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.token_secret_arn
      },
      ], !local.edge_shield_enabled ? [] : [
      {
        Sid      = "ReadOriginSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.r.origin_secret_arn
      },
      ], !var.signed_sessions || var.token_secret_kms_key_arn == null ? [] : [
      {
        Sid       = "DecryptTokenSecret"
        Effect    = "Allow"
        Action    = ["kms:Decrypt"]
        Resource  = var.token_secret_kms_key_arn
        Condition = { StringLike = { "kms:ViaService" = "secretsmanager.*.amazonaws.com" } }
      },
    ])
  }
  policy_statements = { for f in local.functions : f => local.all_policy_statements[f] }

  # ---- The public edge, the token secret and the badge's CDN ---------------------------------

  # The read URL is always AWS_IAM: dashboards sign their requests, the CDN signs its own (origin
  # access control). CORS only for the dashboards' origins.
  read_function_url = {
    authorization_type = "AWS_IAM"
    cors = length(var.allowed_origins) == 0 ? null : {
      allow_origins = var.allowed_origins
      allow_methods = ["GET"]
      max_age       = 3600
    }
  }

  # The edge's URL is the public door: auth NONE, no CORS configuration (the function answers
  # CORS itself, for edge_cors_origins). A NONE URL needs lambda:InvokeFunctionUrl for "*" and,
  # since October 2025, lambda:InvokeFunction through the URL only.
  edge = !var.public_edge ? null : {
    function_url = { authorization_type = "NONE", cors = null }
    permissions = {
      url = {
        statement_id             = "LivecountPublicFunctionUrl"
        action                   = "lambda:InvokeFunctionUrl"
        principal                = "*"
        function_url_auth_type   = "NONE"
        invoked_via_function_url = null
      }
      invoke = {
        statement_id             = "LivecountPublicFunctionUrlInvoke"
        action                   = "lambda:InvokeFunction"
        principal                = "*"
        function_url_auth_type   = null
        invoked_via_function_url = true
      }
    }
  }

  # Created only when sessions are signed and no secret was given: 48 random characters without
  # punctuation. The root module ignores later changes to its value, so a rotation by
  # put-secret-value stays.
  token_secret = !local.create_token_secret ? null : {
    name                = "${var.name_prefix}-token-secret"
    description         = "livecount: signs the sessions players count with (${var.name_prefix}); rotate with put-secret-value"
    password_length     = 48
    exclude_punctuation = true
  }

  # The flood shield (edge_web_acl_arn): CloudFront with the deployer's web ACL in front of the
  # edge's URL, passing every request through (nothing cached, every method: players POST) with
  # the origin secret in x-livecount-origin; the edge refuses a request without it. The secret is
  # created like the token secret: 32 random characters without punctuation, its later value left
  # alone. The root module puts the secret's value in the header.
  origin_header = "x-livecount-origin"
  origin_secret = !local.edge_shield_enabled ? null : {
    name                = "${var.name_prefix}-edge-origin-secret"
    description         = "livecount: the flood shield sends this to the edge (${var.name_prefix})"
    password_length     = 32
    exclude_punctuation = true
  }
  edge_shield = !local.edge_shield_enabled ? null : {
    comment    = "livecount edge shield (${var.name_prefix}): POST /events through AWS WAF"
    web_acl_id = var.edge_web_acl_arn
    origin = {
      id                     = "edge"
      secret_header          = local.origin_header
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
    default_cache_behavior = {
      viewer_protocol_policy = "redirect-to-https"
      allowed_methods        = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
      cached_methods         = ["GET", "HEAD"]
      compress               = true
      # The managed CachingDisabled policy.
      cache_policy_id = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    }
    # What the shield forwards: the headers the edge reads (the body's type and CORS) and the
    # one CloudFront adds with the viewer's ISO 3166-1 alpha-2 country, which the edge trusts
    # only from the shield (docs/design.md, "Breakdowns"). Not Host: the Function URL answers
    # only to its own.
    origin_request_policy = {
      name                  = "${var.name_prefix}-edge"
      comment               = "livecount edge: what the edge reads, and the viewer country"
      header_behavior       = "whitelist"
      headers               = ["Content-Type", "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers", "CloudFront-Viewer-Country"]
      cookie_behavior       = "none"
      query_string_behavior = "none"
    }
    price_class     = "PriceClass_100"
    http_version    = "http2and3"
    is_ipv6_enabled = true
  }

  # Where players post: through the shield when there is one (the Function URL still answers, but
  # refuses anything without the origin secret), else the Function URL (it ends with "/").
  # Null while the root module has not passed the one it needs (the output's precondition says so).
  edge_url = (!var.public_edge ? null
    : local.edge_shield_enabled ? (var.edge_endpoints.shield_domain_name == null ? null : "https://${var.edge_endpoints.shield_domain_name}/events")
    : (var.edge_endpoints.function_url == null ? null : "${var.edge_endpoints.function_url}events")
  )

  # The badge behind CloudFront: the only origin is the read URL, signed by origin access control
  # and marked public (the read function then serves the badge and nothing else). The answer says
  # how long to keep it (Cache-Control: public, max-age=1); the policy bounds that, and keys on the
  # path alone.
  public_header = "x-livecount-public"
  badge_cdn = !var.badge_cdn ? null : {
    comment = "livecount badge (${var.name_prefix}): GET /api/streams/{id}/viewers"
    origin_access_control = {
      name             = "${var.name_prefix}-read"
      description      = "livecount: CloudFront signs its requests to the read Function URL (${var.name_prefix})"
      origin_type      = "lambda"
      signing_behavior = "always"
      signing_protocol = "sigv4"
    }
    origin = {
      id                     = "read"
      custom_headers         = { (local.public_header) = "1" }
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
    cache_policy = {
      name                  = "${var.name_prefix}-badge"
      comment               = "livecount badge: the origin says how long (max-age=1); the path is the key"
      min_ttl               = 0
      default_ttl           = 1
      max_ttl               = 10
      header_behavior       = "none"
      cookie_behavior       = "none"
      query_string_behavior = "none"
      enable_brotli         = true
      enable_gzip           = true
    }
    default_cache_behavior = {
      viewer_protocol_policy = "redirect-to-https"
      allowed_methods        = ["GET", "HEAD"]
      cached_methods         = ["GET", "HEAD"]
      compress               = true
    }
    price_class     = "PriceClass_100"
    http_version    = "http2and3"
    is_ipv6_enabled = true
    # The distribution (source_arn, wired by the root module) may call the read URL, and through
    # it the function.
    permissions = {
      url = {
        statement_id             = "LivecountBadgeCdn"
        action                   = "lambda:InvokeFunctionUrl"
        principal                = "cloudfront.amazonaws.com"
        invoked_via_function_url = null
      }
      invoke = {
        statement_id             = "LivecountBadgeCdnInvoke"
        action                   = "lambda:InvokeFunction"
        principal                = "cloudfront.amazonaws.com"
        invoked_via_function_url = true
      }
    }
  }

  # ---- Alarms -------------------------------------------------------------------------------
  # Every alarm has one shape: a single metric (namespace ... statistic), or a metric-math
  # `expression` over `queries` (the single-metric fields null).
  alarm_defaults = {
    comparison_operator = "GreaterThanThreshold"
    treat_missing_data  = "notBreaching"
    evaluation_periods  = 1
    datapoints_to_alarm = 1
    period              = 300
    statistic           = "Sum"
    threshold           = 0
    expression          = null
    queries             = []
  }
  math = {
    namespace   = null
    metric_name = null
    dimensions  = null
    statistic   = null
    period      = 60
  }
  handler_dimensions = { for f in ["ingest", "aggregate", "edge"] : f => { Deployment = var.name_prefix, Function = f } }

  function_alarms = merge([for f in local.functions : {
    for metric in ["Errors", "Throttles"] : "${f}_${lower(metric)}" => merge(local.alarm_defaults, {
      description = "livecount: the ${f} function ${metric == "Errors" ? "returned errors" : "was throttled"}"
      namespace   = "AWS/Lambda"
      metric_name = metric
      dimensions  = { FunctionName = local.r.function_names[f] }
    })
  }]...)

  table_alarms = { for t, name in { sessions = local.sessions_table, counters = local.counters_table, viewers = local.viewers_table } : "${t}_table_throttled" => merge(local.alarm_defaults, local.math, {
    description = "livecount: DynamoDB throttled requests on the ${t} table (docs/operations.md)"
    expression  = "FILL(reads, 0) + FILL(writes, 0)"
    queries = [
      { id = "reads", namespace = "AWS/DynamoDB", metric_name = "ReadThrottleEvents", dimensions = { TableName = name }, statistic = "Sum" },
      { id = "writes", namespace = "AWS/DynamoDB", metric_name = "WriteThrottleEvents", dimensions = { TableName = name }, statistic = "Sum" },
    ]
  }) }

  # Arrivals, not depth: an alarm on depth would stay red for the queue's 14-day retention.
  arrival_alarms = { for key, q in {
    dead_letter_arrivals       = { name = local.r.dead_letter_queue_name, what = "events reached the dead-letter queue (invalid, with their reasons, or failing max_receive_count times)" }
    aggregate_failure_arrivals = { name = local.r.aggregate_failure_queue_name, what = "the aggregate mapping gave up on sessions stream records" }
    } : key => merge(local.alarm_defaults, local.math, {
      description = "livecount: ${q.what} (docs/operations.md)"
      expression  = "MAX([FILL(sent, 0), FILL(DIFF(visible), 0)])"
      queries = [
        { id = "sent", namespace = "AWS/SQS", metric_name = "NumberOfMessagesSent", dimensions = { QueueName = q.name }, statistic = "Sum" },
        { id = "visible", namespace = "AWS/SQS", metric_name = "ApproximateNumberOfMessagesVisible", dimensions = { QueueName = q.name }, statistic = "Maximum" },
      ]
  }) }

  # The edge's refusals, all reasons together: a flood of them is an inflation attempt or a
  # broken player; a failed write is a player answered 503.
  edge_alarms = { for key, alarm in {
    edge_refusals = merge(local.alarm_defaults, local.math, {
      description = "livecount: the edge refused more than ${var.refusals_alarm_threshold} requests in 5 minutes: an inflation attempt or a broken player (docs/operations.md)"
      expression  = join(" + ", [for i, m in local.refusal_metrics : "FILL(r${i}, 0)"])
      period      = 300
      threshold   = var.refusals_alarm_threshold
      queries = [for i, m in local.refusal_metrics : {
        id = "r${i}", namespace = "livecount", metric_name = m, dimensions = local.handler_dimensions["edge"], statistic = "Sum"
      }]
    })
    edge_writes_failed = merge(local.alarm_defaults, {
      description = "livecount: the edge could not write players' events (503 to the player, which retries; see the edge logs)"
      namespace   = "livecount"
      metric_name = "WritesFailed"
      dimensions  = local.handler_dimensions["edge"]
    })
  } : key => alarm if var.public_edge }

  alarms = merge(local.function_alarms, local.table_alarms, local.arrival_alarms, local.edge_alarms, {
    events_queue_age = merge(local.alarm_defaults, {
      description         = "livecount: events wait more than ${var.window_seconds / 2} s (W / 2) in the queue; viewers start dropping out of the count (docs/operations.md)"
      namespace           = "AWS/SQS"
      metric_name         = "ApproximateAgeOfOldestMessage"
      dimensions          = { QueueName = local.r.events_queue_name }
      statistic           = "Maximum"
      period              = 60
      evaluation_periods  = 3
      datapoints_to_alarm = 2
      threshold           = var.window_seconds / 2
    })
    aggregate_iterator_age = merge(local.alarm_defaults, {
      description         = "livecount: the aggregator lags the sessions stream by more than ${var.iterator_age_alarm_seconds} s; counts fall behind (docs/operations.md)"
      namespace           = "AWS/Lambda"
      metric_name         = "IteratorAge"
      dimensions          = { FunctionName = local.r.function_names["aggregate"] }
      statistic           = "Maximum"
      period              = 60
      evaluation_periods  = 3
      datapoints_to_alarm = 2
      threshold           = var.iterator_age_alarm_seconds * 1000 # IteratorAge is in milliseconds
    })
    pipeline_stalled = merge(local.alarm_defaults, local.math, {
      description = "livecount: events were applied to sessions but the aggregator was not invoked for 3 minutes; counts are frozen (docs/operations.md)"
      # Events applied by either path: the edge (players) and ingest (relays).
      expression = (var.public_edge
        ? "IF(FILL(applied, 0) + FILL(edgeApplied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
        : "IF(FILL(applied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
      )
      comparison_operator = "GreaterThanOrEqualToThreshold"
      threshold           = 1
      evaluation_periods  = 3
      datapoints_to_alarm = 3
      treat_missing_data  = "breaching"
      queries = concat(
        [{ id = "applied", namespace = "livecount", metric_name = "EventsApplied", dimensions = local.handler_dimensions["ingest"], statistic = "Sum" }],
        !var.public_edge ? [] : [{ id = "edgeApplied", namespace = "livecount", metric_name = "EventsApplied", dimensions = local.handler_dimensions["edge"], statistic = "Sum" }],
        [{ id = "invocations", namespace = "AWS/Lambda", metric_name = "Invocations", dimensions = { FunctionName = local.r.function_names["aggregate"] }, statistic = "Sum" }],
      )
    })
    messages_invalid = merge(local.alarm_defaults, {
      description = "livecount: more than ${var.invalid_messages_threshold} invalid player messages in 5 minutes (see the ingest logs for each reason)"
      namespace   = "livecount"
      metric_name = "MessagesInvalid"
      dimensions  = local.handler_dimensions["ingest"]
      threshold   = var.invalid_messages_threshold
    })
    unreadable_records = merge(local.alarm_defaults, {
      description = "livecount: the aggregator skipped sessions stream records it could not understand"
      namespace   = "livecount"
      metric_name = "UnreadableRecords"
      dimensions  = local.handler_dimensions["aggregate"]
    })
    records_not_applied = merge(local.alarm_defaults, {
      description = "livecount: DynamoDB rejected a counter update as invalid; its records were not applied (see the aggregate logs)"
      namespace   = "livecount"
      metric_name = "RecordsNotApplied"
      dimensions  = local.handler_dimensions["aggregate"]
    })
    seconds_missed = merge(local.alarm_defaults, {
      description = "livecount: seconds of a stream's figures could not be counted (its figures' publications failed for more than 10 s while its counter went on; see the aggregate logs)"
      namespace   = "livecount"
      metric_name = "SecondsMissed"
      dimensions  = local.handler_dimensions["aggregate"]
    })
  })

  # ---- Dashboard ------------------------------------------------------------------------------
  # The handlers' EMF metrics (namespace livecount, dimension Function).
  ingest_metrics    = ["EventsApplied", "EventsStale", "MessagesInvalid", "MessagesDeadLettered", "MessagesFailed", "MessagesExpired", "TokensRejected"]
  aggregate_metrics = ["RecordsApplied", "DuplicateRecords", "RecordsNotApplied", "DeltasLate", "UnreadableRecords", "CounterUpdates", "StreamsFailed", "StreamsDeferred", "ShorterRedeliveries", "StartsLate", "SecondsMissed"]
  # Refusals by reason first, as the edge emits them (RefusedBypass: a request to the Function URL
  # without the shield's origin secret; always 0 without the shield).
  edge_metrics    = ["RefusedInvalid", "RefusedTooLarge", "RefusedManySessions", "RefusedUnsigned", "RefusedForged", "RefusedExpired", "RefusedBypass", "EventsApplied", "EventsStale", "WritesFailed", "CountReads"]
  refusal_metrics = [for m in local.edge_metrics : m if startswith(m, "Refused")]

  graph = { view = "timeSeries", stacked = false, region = local.r.region, period = 60 }

  # The handlers' row: the edge (when deployed) beside ingest and aggregate.
  handler_graphs = concat(!var.public_edge ? [] : [{
    title = "Edge: counted and refused per minute"
    metrics = concat(
      [for m in ["EventsApplied", "EventsStale"] : ["livecount", m, "Deployment", var.name_prefix, "Function", "edge", { stat = "Sum", label = "counted: ${m}" }]],
      [for m in local.refusal_metrics : ["livecount", m, "Deployment", var.name_prefix, "Function", "edge", { stat = "Sum", label = "refused: ${m}", yAxis = "right" }]],
    )
    }], [
    {
      title   = "Ingest (relays): events per minute"
      metrics = [for m in local.ingest_metrics : ["livecount", m, "Deployment", var.name_prefix, "Function", "ingest", { stat = "Sum" }]]
    },
    {
      title   = "Aggregate: records and updates per minute"
      metrics = [for m in local.aggregate_metrics : ["livecount", m, "Deployment", var.name_prefix, "Function", "aggregate", { stat = "Sum" }]]
    },
  ])
  handler_widget_width = 24 / length(local.handler_graphs)
  handler_widgets = [for i, g in local.handler_graphs : {
    type       = "metric"
    x          = i * local.handler_widget_width
    y          = 2
    width      = local.handler_widget_width
    height     = 6
    properties = merge(local.graph, g)
  }]

  dashboard = {
    widgets = concat([
      {
        type = "text", x = 0, y = 0, width = 24, height = 2
        properties = {
          markdown = "# livecount\nViewer counts are not a metric: read them with one GetItem on the counters table (or the read API, or the badge). These graphs show the pipeline that keeps them exact."
        }
      },
      ], local.handler_widgets, [
      {
        type = "metric", x = 0, y = 8, width = 8, height = 6
        properties = merge(local.graph, {
          title       = "Aggregate iterator age (ms, max)"
          metrics     = [["AWS/Lambda", "IteratorAge", "FunctionName", local.r.function_names["aggregate"], { stat = "Maximum" }]]
          annotations = { horizontal = [{ value = var.iterator_age_alarm_seconds * 1000, label = "alarm" }] }
        })
      },
      {
        type = "metric", x = 8, y = 8, width = 8, height = 6
        properties = merge(local.graph, {
          title = "Errors and throttles"
          metrics = concat(
            [for f in local.functions : ["AWS/Lambda", "Errors", "FunctionName", local.r.function_names[f], { stat = "Sum", label = "${f} errors" }]],
            [for f in local.functions : ["AWS/Lambda", "Throttles", "FunctionName", local.r.function_names[f], { stat = "Sum", label = "${f} throttles", yAxis = "right" }]],
          )
        })
      },
      {
        type = "metric", x = 16, y = 8, width = 8, height = 6
        properties = merge(local.graph, {
          title = "Dead letters and failed stream batches"
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.r.dead_letter_queue_name, { stat = "Maximum", label = "events DLQ" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.r.aggregate_failure_queue_name, { stat = "Maximum", label = "aggregate on-failure queue" }],
          ]
        })
      },
      {
        type = "metric", x = 0, y = 14, width = 12, height = 6
        properties = merge(local.graph, {
          title = "Events queue"
          metrics = [
            ["AWS/SQS", "NumberOfMessagesSent", "QueueName", local.r.events_queue_name, { stat = "Sum", label = "sent" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.r.events_queue_name, { stat = "Maximum", label = "backlog" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.r.events_queue_name, { stat = "Maximum", label = "oldest (s)", yAxis = "right" }],
          ]
        })
      },
      {
        type = "metric", x = 12, y = 14, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Duration p99 (ms)"
          metrics = [for f in local.functions : ["AWS/Lambda", "Duration", "FunctionName", local.r.function_names[f], { stat = "p99", label = f }]]
        })
      },
    ])
  }
}
