# Everything about livecount that is pure computation: the functions' environment, each role's
# policy, the alarms and the dashboard. The root module turns these into resources.

locals {
  functions = ["ingest", "aggregate", "read"]

  timeouts = {
    ingest    = var.ingest_timeout_seconds
    aggregate = var.aggregate_timeout_seconds
    read      = var.read_timeout_seconds
  }

  environment = {
    LIVECOUNT_SESSIONS_TABLE        = var.sessions_table
    LIVECOUNT_COUNTERS_TABLE        = var.counters_table
    LIVECOUNT_WINDOW_SECONDS        = tostring(var.window_seconds)
    LIVECOUNT_BUCKET_SECONDS        = tostring(var.bucket_seconds)
    LIVECOUNT_GRACE_SECONDS         = tostring(var.grace_seconds)
    LIVECOUNT_SESSION_SHARDS        = tostring(var.session_shards)
    LIVECOUNT_MAX_CONCURRENT_WRITES = tostring(var.max_concurrent_writes)
    RUST_LOG                        = var.log_level
  }

  # Only the secret's ARN: ingest reads the secret itself at start.
  ingest_environment = merge(local.environment, var.token_secret_arn == null ? {} : {
    LIVECOUNT_TOKEN_SECRET_ARN = var.token_secret_arn
  })

  # AWS: "set the source queue's visibility timeout to at least six times the function timeout";
  # the batching window is added so a batch gathered for that long is still covered.
  queue_visibility_timeout_seconds = 6 * var.ingest_timeout_seconds + var.ingest_max_batching_window_seconds

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
      ], var.token_secret_arn == null ? [] : [
      {
        Sid      = "ReadTokenSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = var.token_secret_arn
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
  alarm_defaults = {
    comparison_operator = "GreaterThanThreshold"
    treat_missing_data  = "notBreaching"
    evaluation_periods  = 1
    datapoints_to_alarm = 1
    period              = 300
    statistic           = "Sum"
    threshold           = 0
  }

  function_alarms = merge([for f in local.functions : {
    for metric in ["Errors", "Throttles"] : "${f}_${lower(metric)}" => merge(local.alarm_defaults, {
      description = "livecount: the ${f} function ${metric == "Errors" ? "returned errors" : "was throttled"}"
      namespace   = "AWS/Lambda"
      metric_name = metric
      dimensions  = { FunctionName = local.r.function_names[f] }
    })
  }]...)

  alarms = merge(local.function_alarms, {
    dead_letter_queue_depth = merge(local.alarm_defaults, {
      description = "livecount: events reached the dead-letter queue (invalid, or failing max_receive_count times)"
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = local.r.dead_letter_queue_name }
      statistic   = "Maximum"
      period      = 60
    })
    aggregate_failure_queue_depth = merge(local.alarm_defaults, {
      description = "livecount: the aggregate mapping gave up on sessions stream records"
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = local.r.aggregate_failure_queue_name }
      statistic   = "Maximum"
      period      = 60
    })
    aggregate_iterator_age = merge(local.alarm_defaults, {
      description         = "livecount: the aggregator lags the sessions stream by more than ${var.iterator_age_alarm_seconds} s (counts are stale)"
      namespace           = "AWS/Lambda"
      metric_name         = "IteratorAge"
      dimensions          = { FunctionName = local.r.function_names["aggregate"] }
      statistic           = "Maximum"
      period              = 60
      evaluation_periods  = 3
      datapoints_to_alarm = 3
      threshold           = var.iterator_age_alarm_seconds * 1000 # IteratorAge is in milliseconds
    })
    messages_invalid = merge(local.alarm_defaults, {
      description = "livecount: more than ${var.invalid_messages_threshold} invalid player messages in 5 minutes (see the ingest logs for each reason)"
      namespace   = "livecount"
      metric_name = "MessagesInvalid"
      dimensions  = { Function = "ingest" }
      threshold   = var.invalid_messages_threshold
    })
    unreadable_records = merge(local.alarm_defaults, {
      description = "livecount: the aggregator skipped sessions stream records it could not understand"
      namespace   = "livecount"
      metric_name = "UnreadableRecords"
      dimensions  = { Function = "aggregate" }
    })
    records_not_applied = merge(local.alarm_defaults, {
      description = "livecount: DynamoDB rejected a counter update as invalid; its records were not applied (see the aggregate logs)"
      namespace   = "livecount"
      metric_name = "RecordsNotApplied"
      dimensions  = { Function = "aggregate" }
    })
  })

  # ---- Dashboard ------------------------------------------------------------------------------
  # The handlers' EMF metrics (namespace livecount, dimension Function).
  ingest_metrics    = ["EventsApplied", "EventsStale", "MessagesInvalid", "MessagesFailed"]
  aggregate_metrics = ["RecordsApplied", "DuplicateRecords", "RecordsNotApplied", "DeltasLate", "UnreadableRecords", "CounterUpdates", "StreamsFailed"]

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
          metrics = [for m in local.ingest_metrics : ["livecount", m, "Function", "ingest", { stat = "Sum" }]]
        })
      },
      {
        type = "metric", x = 12, y = 2, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Aggregate: records and updates per minute"
          metrics = [for m in local.aggregate_metrics : ["livecount", m, "Function", "aggregate", { stat = "Sum" }]]
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
