# Everything about livecount that is pure computation: the functions' environment, each role's
# policy, the alarms and the dashboard. The root module turns these into resources.

locals {
  functions = ["ingest", "aggregate", "read"]

  sessions_table = coalesce(var.sessions_table, "${var.name_prefix}-sessions")
  counters_table = coalesce(var.counters_table, "${var.name_prefix}-counters")

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
  }

  environment = {
    LIVECOUNT_DEPLOYMENT            = var.name_prefix
    LIVECOUNT_SESSIONS_TABLE        = local.sessions_table
    LIVECOUNT_COUNTERS_TABLE        = local.counters_table
    LIVECOUNT_WINDOW_SECONDS        = tostring(var.window_seconds)
    LIVECOUNT_BUCKET_SECONDS        = tostring(var.bucket_seconds)
    LIVECOUNT_GRACE_SECONDS         = tostring(var.grace_seconds)
    LIVECOUNT_SESSION_SHARDS        = tostring(var.session_shards)
    LIVECOUNT_MAX_CONCURRENT_WRITES = tostring(var.max_concurrent_writes)
    LIVECOUNT_COUNTER_TTL_DAYS      = tostring(var.counter_ttl_days)
    RUST_LOG                        = var.log_level
  }

  # Only the secret's ARN: ingest reads the secret itself at start.
  ingest_environment = merge(local.environment, {
    LIVECOUNT_DEAD_LETTER_QUEUE_URL = local.r.dead_letter_queue_url
    }, var.token_secret_arn == null ? {} : {
    LIVECOUNT_TOKEN_SECRET_ARN = var.token_secret_arn
  })

  # AWS: "set the source queue's visibility timeout to at least six times the function timeout";
  # the batching window is added so a batch gathered for that long is still covered.
  queue_visibility_timeout_seconds = 6 * var.ingest_timeout_seconds + var.ingest_max_batching_window_seconds
  # Retention fitted to the data's life (an event older than W + G is dropped by ingest), with
  # every retry (max_receive_count x visibility) inside it.
  queue_retention_seconds = max(60, 2 * local.data_life_seconds, var.max_receive_count * local.queue_visibility_timeout_seconds)

  r = var.resources

  # One role per function, only the actions it calls, only on its own resources. The log
  # statement covers the streams of the function's own log group (ARN + ":*").
  log_statement = { for f in local.functions : f => {
    Sid      = "OwnLogGroup"
    Effect   = "Allow"
    Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    Resource = "${local.r.log_group_arns[f]}:*"
  } }

  policy_statements = {
    ingest = concat([
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
      ], var.token_secret_arn == null ? [] : [
      {
        Sid      = "ReadTokenSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = var.token_secret_arn
      },
      ], var.token_secret_arn == null || var.token_secret_kms_key_arn == null ? [] : [
      {
        Sid       = "DecryptTokenSecret"
        Effect    = "Allow"
        Action    = ["kms:Decrypt"]
        Resource  = var.token_secret_kms_key_arn
        Condition = { StringLike = { "kms:ViaService" = "secretsmanager.*.amazonaws.com" } }
      },
    ])
    aggregate = [
      local.log_statement["aggregate"],
      {
        Sid      = "WriteCounters"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = local.r.counters_table_arn
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
        Action   = ["dynamodb:GetItem", "dynamodb:Scan"]
        Resource = local.r.counters_table_arn
      },
    ]
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
  handler_dimensions = { for f in ["ingest", "aggregate"] : f => { Deployment = var.name_prefix, Function = f } }

  function_alarms = merge([for f in local.functions : {
    for metric in ["Errors", "Throttles"] : "${f}_${lower(metric)}" => merge(local.alarm_defaults, {
      description = "livecount: the ${f} function ${metric == "Errors" ? "returned errors" : "was throttled"}"
      namespace   = "AWS/Lambda"
      metric_name = metric
      dimensions  = { FunctionName = local.r.function_names[f] }
    })
  }]...)

  table_alarms = { for t, name in { sessions = local.sessions_table, counters = local.counters_table } : "${t}_table_throttled" => merge(local.alarm_defaults, local.math, {
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

  alarms = merge(local.function_alarms, local.table_alarms, local.arrival_alarms, {
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
      description         = "livecount: events were applied to sessions but the aggregator was not invoked for 3 minutes; counts are frozen (docs/operations.md)"
      expression          = "IF(FILL(applied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
      comparison_operator = "GreaterThanOrEqualToThreshold"
      threshold           = 1
      evaluation_periods  = 3
      datapoints_to_alarm = 3
      treat_missing_data  = "breaching"
      queries = [
        { id = "applied", namespace = "livecount", metric_name = "EventsApplied", dimensions = local.handler_dimensions["ingest"], statistic = "Sum" },
        { id = "invocations", namespace = "AWS/Lambda", metric_name = "Invocations", dimensions = { FunctionName = local.r.function_names["aggregate"] }, statistic = "Sum" },
      ]
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
  })

  # ---- Dashboard ------------------------------------------------------------------------------
  # The handlers' EMF metrics (namespace livecount, dimension Function).
  ingest_metrics    = ["EventsApplied", "EventsStale", "MessagesInvalid", "MessagesDeadLettered", "MessagesFailed", "MessagesExpired", "TokensRejected"]
  aggregate_metrics = ["RecordsApplied", "DuplicateRecords", "RecordsNotApplied", "DeltasLate", "UnreadableRecords", "CounterUpdates", "StreamsFailed", "StreamsDeferred", "ShorterRedeliveries", "StartsLate"]

  graph = { view = "timeSeries", stacked = false, region = local.r.region, period = 60 }

  dashboard = {
    widgets = [
      {
        type = "text", x = 0, y = 0, width = 24, height = 2
        properties = {
          markdown = "# livecount\nViewer counts are not a metric: read them with one GetItem on the counters table (or the read API). These graphs show the pipeline that keeps them exact."
        }
      },
      {
        type = "metric", x = 0, y = 2, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Ingest: events per minute"
          metrics = [for m in local.ingest_metrics : ["livecount", m, "Deployment", var.name_prefix, "Function", "ingest", { stat = "Sum" }]]
        })
      },
      {
        type = "metric", x = 12, y = 2, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Aggregate: records and updates per minute"
          metrics = [for m in local.aggregate_metrics : ["livecount", m, "Deployment", var.name_prefix, "Function", "aggregate", { stat = "Sum" }]]
        })
      },
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
    ]
  }
}
