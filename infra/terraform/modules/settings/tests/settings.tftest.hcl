# Offline tests of livecount's settings: no provider, no download (`terraform test` here).

variables {
  resources = {
    region                       = "eu-west-1"
    sessions_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions"
    sessions_stream_arn          = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions/stream/2026-01-01T00:00:00.000"
    counters_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
    events_queue_arn             = "arn:aws:sqs:eu-west-1:123456789012:livecount-events"
    events_queue_name            = "livecount-events"
    dead_letter_queue_arn        = "arn:aws:sqs:eu-west-1:123456789012:livecount-events-dlq"
    dead_letter_queue_url        = "https://sqs.eu-west-1.amazonaws.com/123456789012/livecount-events-dlq"
    dead_letter_queue_name       = "livecount-events-dlq"
    aggregate_failure_queue_arn  = "arn:aws:sqs:eu-west-1:123456789012:livecount-aggregate-failures"
    aggregate_failure_queue_name = "livecount-aggregate-failures"
    log_group_arns = {
      ingest    = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-ingest"
      aggregate = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-aggregate"
      read      = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-read"
    }
    function_names = {
      ingest    = "livecount-ingest"
      aggregate = "livecount-aggregate"
      read      = "livecount-read"
    }
  }
}

run "defaults_are_the_documented_ones" {
  command = plan

  assert {
    condition = output.environment == {
      LIVECOUNT_DEPLOYMENT            = "livecount"
      LIVECOUNT_SESSIONS_TABLE        = "livecount-sessions"
      LIVECOUNT_COUNTERS_TABLE        = "livecount-counters"
      LIVECOUNT_WINDOW_SECONDS        = "15"
      LIVECOUNT_BUCKET_SECONDS        = "5"
      LIVECOUNT_GRACE_SECONDS         = "60"
      LIVECOUNT_SESSION_SHARDS        = "8"
      LIVECOUNT_MAX_CONCURRENT_WRITES = "16"
      LIVECOUNT_COUNTER_TTL_DAYS      = "7"
      RUST_LOG                        = "info"
    }
    error_message = "environment: ${jsonencode(output.environment)}"
  }

  assert {
    condition     = output.ingest_environment.LIVECOUNT_DEAD_LETTER_QUEUE_URL == "https://sqs.eu-west-1.amazonaws.com/123456789012/livecount-events-dlq"
    error_message = "ingest sends invalid events to the DLQ: ${jsonencode(output.ingest_environment)}"
  }

  assert {
    condition     = output.queue_visibility_timeout_seconds == 61 && output.queue_visibility_timeout_seconds >= 6 * output.settings.ingest_timeout_seconds
    error_message = "visibility timeout ${output.queue_visibility_timeout_seconds} is not 6 x 10 s + 1 s"
  }

  assert {
    condition     = output.queue_retention_seconds == 183 && output.queue_retention_seconds >= output.settings.max_receive_count * output.queue_visibility_timeout_seconds
    error_message = "retention ${output.queue_retention_seconds}: 2 x (W + B + G) = 160 s, or every retry (3 x 61 s = 183 s)"
  }

  # Parity with CDK: every shared setting's default is infra/contract.json's, as the CDK tests
  # check for CDK's.
  assert {
    condition = alltrue([
      for name, setting in jsondecode(file("../../../contract.json")).settings :
      jsonencode(output.settings[name]) == jsonencode(setting.default) if name != "_comment"
    ])
    error_message = "settings differ from infra/contract.json: ${jsonencode(output.settings)}"
  }

  # The environment's numeric defaults are the contract's (the Rust tests check the same).
  assert {
    condition = alltrue([
      for name, rule in jsondecode(file("../../../contract.json")).environment :
      output.environment[name] == tostring(rule.default) if can(rule.min)
    ])
    error_message = "environment defaults differ from infra/contract.json"
  }

  assert {
    condition     = output.function_url.authorization_type == "AWS_IAM" && output.function_url.cors == null
    error_message = "the read API must default to AWS_IAM auth without CORS"
  }
}

run "props_rename_through_to_the_environment_variables" {
  command = plan

  variables {
    sessions_table        = "my-sessions"
    counters_table        = "my-counters"
    window_seconds        = 30
    bucket_seconds        = 10
    grace_seconds         = 120
    session_shards        = 256
    max_concurrent_writes = 32
    log_level             = "debug"
  }

  assert {
    condition = output.environment == {
      LIVECOUNT_DEPLOYMENT            = "livecount"
      LIVECOUNT_SESSIONS_TABLE        = "my-sessions"
      LIVECOUNT_COUNTERS_TABLE        = "my-counters"
      LIVECOUNT_WINDOW_SECONDS        = "30"
      LIVECOUNT_BUCKET_SECONDS        = "10"
      LIVECOUNT_GRACE_SECONDS         = "120"
      LIVECOUNT_SESSION_SHARDS        = "256"
      LIVECOUNT_MAX_CONCURRENT_WRITES = "32"
      LIVECOUNT_COUNTER_TTL_DAYS      = "7"
      RUST_LOG                        = "debug"
    }
    error_message = "environment: ${jsonencode(output.environment)}"
  }
}

# The root module passes null for every variable its caller left unset: the defaults here apply.
run "null_means_the_default" {
  command = plan

  variables {
    window_seconds         = null
    session_shards         = null
    sessions_table         = null
    point_in_time_recovery = null
    memory_size            = null
    allowed_origins        = null
    reserved_concurrency   = null
  }

  assert {
    condition = (
      output.environment.LIVECOUNT_WINDOW_SECONDS == "15" &&
      output.environment.LIVECOUNT_SESSION_SHARDS == "8" &&
      output.environment.LIVECOUNT_SESSIONS_TABLE == "livecount-sessions" &&
      output.settings.point_in_time_recovery == true &&
      output.settings.memory_size == 256 &&
      output.function_url.cors == null
    )
    error_message = "null must fall back to the defaults"
  }
}

run "each_role_gets_only_the_actions_its_function_calls" {
  command = plan

  assert {
    condition = output.policy_statements.ingest == [
      {
        Sid      = "OwnLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-ingest:*"
      },
      {
        Sid      = "WriteSessions"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions"
      },
      {
        Sid      = "ConsumeEvents"
        Effect   = "Allow"
        Action   = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
        Resource = "arn:aws:sqs:eu-west-1:123456789012:livecount-events"
      },
      {
        Sid      = "DeadLetterInvalidEvents"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = "arn:aws:sqs:eu-west-1:123456789012:livecount-events-dlq"
      },
    ]
    error_message = "ingest: ${jsonencode(output.policy_statements.ingest)}"
  }

  assert {
    condition = output.policy_statements.aggregate == [
      {
        Sid      = "OwnLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-aggregate:*"
      },
      {
        Sid      = "WriteCounters"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
      },
      {
        Sid      = "ReadSessionsStream"
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions/stream/2026-01-01T00:00:00.000"
      },
      {
        Sid      = "ReportFailedBatches"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = "arn:aws:sqs:eu-west-1:123456789012:livecount-aggregate-failures"
      },
    ]
    error_message = "aggregate: ${jsonencode(output.policy_statements.aggregate)}"
  }

  assert {
    condition = output.policy_statements.read == [
      {
        Sid      = "OwnLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-read:*"
      },
      {
        Sid      = "ReadCounters"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Scan"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
      },
    ]
    error_message = "read: ${jsonencode(output.policy_statements.read)}"
  }

  assert {
    condition = alltrue(flatten([for f, statements in output.policy_statements : [
      for s in statements : concat(
        [for a in s.Action : !strcontains(a, "*")],
        [s.Resource != "*", s.Effect == "Allow"],
      )
    ]]))
    error_message = "a policy has a \"*\" action or resource"
  }

  assert {
    condition     = jsondecode(output.policies.read) == { Version = "2012-10-17", Statement = output.policy_statements.read }
    error_message = "the JSON policy does not match its statements"
  }
}

run "the_documented_alarms" {
  command = plan

  assert {
    condition = toset(keys(output.alarms)) == toset([
      "ingest_errors", "ingest_throttles", "aggregate_errors", "aggregate_throttles", "read_errors", "read_throttles",
      "dead_letter_arrivals", "aggregate_failure_arrivals", "aggregate_iterator_age", "events_queue_age",
      "pipeline_stalled", "sessions_table_throttled", "counters_table_throttled",
      "messages_invalid", "records_not_applied", "unreadable_records",
    ])
    error_message = "alarms: ${jsonencode(keys(output.alarms))}"
  }

  assert {
    condition = alltrue([for k, a in output.alarms :
      startswith(a.description, "livecount: ") &&
      a.treat_missing_data == (k == "pipeline_stalled" ? "breaching" : "notBreaching")
    ])
    error_message = "every alarm has a description; only the stalled-pipeline alarm treats silence as breaching"
  }

  assert {
    condition = (
      output.alarms.events_queue_age.namespace == "AWS/SQS" &&
      output.alarms.events_queue_age.metric_name == "ApproximateAgeOfOldestMessage" &&
      output.alarms.events_queue_age.dimensions == { QueueName = "livecount-events" } &&
      output.alarms.events_queue_age.threshold == 7.5 &&
      output.alarms.events_queue_age.evaluation_periods == 3 &&
      output.alarms.events_queue_age.datapoints_to_alarm == 2
    )
    error_message = "queue age alarm (W / 2, 2 of 3): ${jsonencode(output.alarms.events_queue_age)}"
  }

  assert {
    condition = (
      output.alarms.aggregate_iterator_age.namespace == "AWS/Lambda" &&
      output.alarms.aggregate_iterator_age.metric_name == "IteratorAge" &&
      output.alarms.aggregate_iterator_age.dimensions == { FunctionName = "livecount-aggregate" } &&
      output.alarms.aggregate_iterator_age.statistic == "Maximum" &&
      output.alarms.aggregate_iterator_age.threshold == 10000 &&
      output.alarms.aggregate_iterator_age.period == 60 &&
      output.alarms.aggregate_iterator_age.evaluation_periods == 3 &&
      output.alarms.aggregate_iterator_age.datapoints_to_alarm == 2
    )
    error_message = "iterator age alarm: ${jsonencode(output.alarms.aggregate_iterator_age)}"
  }

  assert {
    condition = (
      output.alarms.pipeline_stalled.expression == "IF(FILL(applied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)" &&
      output.alarms.pipeline_stalled.queries[0].metric_name == "EventsApplied" &&
      output.alarms.pipeline_stalled.queries[0].dimensions == { Deployment = "livecount", Function = "ingest" } &&
      output.alarms.pipeline_stalled.queries[1].metric_name == "Invocations" &&
      output.alarms.pipeline_stalled.evaluation_periods == 3
    )
    error_message = "stalled pipeline alarm: ${jsonencode(output.alarms.pipeline_stalled)}"
  }

  assert {
    condition = alltrue([for t in ["sessions", "counters"] :
      output.alarms["${t}_table_throttled"].expression == "FILL(reads, 0) + FILL(writes, 0)" &&
      output.alarms["${t}_table_throttled"].queries[1].metric_name == "WriteThrottleEvents" &&
      output.alarms["${t}_table_throttled"].queries[1].dimensions == { TableName = "livecount-${t}" }
    ])
    error_message = "table throttling alarms"
  }

  assert {
    condition = alltrue([for k, q in { dead_letter_arrivals = "livecount-events-dlq", aggregate_failure_arrivals = "livecount-aggregate-failures" } :
      output.alarms[k].expression == "MAX([FILL(sent, 0), FILL(DIFF(visible), 0)])" &&
      output.alarms[k].queries[0].metric_name == "NumberOfMessagesSent" &&
      output.alarms[k].queries[0].dimensions == { QueueName = q } &&
      output.alarms[k].threshold == 0
    ])
    error_message = "dead-letter arrival alarms"
  }

  assert {
    condition = alltrue([for f in ["ingest", "aggregate", "read"] : alltrue([for m in ["errors", "throttles"] :
      output.alarms["${f}_${m}"].namespace == "AWS/Lambda" &&
      output.alarms["${f}_${m}"].metric_name == title(m) &&
      output.alarms["${f}_${m}"].dimensions == { FunctionName = "livecount-${f}" } &&
      output.alarms["${f}_${m}"].statistic == "Sum" &&
      output.alarms["${f}_${m}"].period == 300 &&
      output.alarms["${f}_${m}"].threshold == 0
    ])])
    error_message = "errors/throttles alarms"
  }

  assert {
    condition = (
      output.alarms.messages_invalid.namespace == "livecount" &&
      output.alarms.messages_invalid.metric_name == "MessagesInvalid" &&
      output.alarms.messages_invalid.dimensions == { Deployment = "livecount", Function = "ingest" } &&
      output.alarms.messages_invalid.statistic == "Sum" &&
      output.alarms.messages_invalid.period == 300 &&
      output.alarms.messages_invalid.threshold == 0 &&
      output.alarms.unreadable_records.dimensions == { Deployment = "livecount", Function = "aggregate" } &&
      output.alarms.unreadable_records.metric_name == "UnreadableRecords" &&
      output.alarms.records_not_applied.dimensions == { Deployment = "livecount", Function = "aggregate" } &&
      output.alarms.records_not_applied.metric_name == "RecordsNotApplied" &&
      output.alarms.records_not_applied.threshold == 0
    )
    error_message = "EMF alarms: ${jsonencode([output.alarms.messages_invalid, output.alarms.unreadable_records, output.alarms.records_not_applied])}"
  }
}

run "alarm_thresholds_are_variables" {
  command = plan

  variables {
    iterator_age_alarm_seconds = 120
    invalid_messages_threshold = 25
  }

  assert {
    condition     = output.alarms.aggregate_iterator_age.threshold == 120000 && output.alarms.messages_invalid.threshold == 25
    error_message = "thresholds: ${output.alarms.aggregate_iterator_age.threshold}, ${output.alarms.messages_invalid.threshold}"
  }
}

run "the_dashboard_graphs_the_pipeline" {
  command = plan

  # Every metric infra/contract.json says the handlers emit is graphed, with its dimensions.
  assert {
    condition = alltrue(flatten([for f in ["ingest", "aggregate"] : [for m in jsondecode(file("../../../contract.json")).metrics[f] :
      contains(flatten([for w in jsondecode(output.dashboard_body).widgets : [
        for metric in try(w.properties.metrics, []) : jsonencode(slice(metric, 0, min(6, length(metric))))
      ]]), jsonencode(["livecount", m, "Deployment", "livecount", "Function", f]))
    ]]))
    error_message = "the handlers' EMF metrics (infra/contract.json) are not all graphed"
  }

  assert {
    condition = alltrue([for m in [
      ["AWS/Lambda", "IteratorAge", "FunctionName", "livecount-aggregate"],
      ["AWS/Lambda", "Errors", "FunctionName", "livecount-read"],
      ["AWS/Lambda", "Throttles", "FunctionName", "livecount-ingest"],
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "livecount-events-dlq"],
      ] : contains(flatten([for w in jsondecode(output.dashboard_body).widgets : [
        for metric in try(w.properties.metrics, []) : jsonencode(slice(metric, 0, 4))
    ]]), jsonencode(m))])
    error_message = "iterator age, errors, throttles or DLQ depth are not graphed"
  }

  assert {
    condition     = alltrue([for w in jsondecode(output.dashboard_body).widgets : w.type == "text" || try(w.properties.region, "") == "eu-west-1"])
    error_message = "every metric widget needs the region"
  }
}

run "public_read_opens_the_url_with_cors_get_from_the_allowed_origins" {
  command = plan

  variables {
    public_read     = true
    allowed_origins = ["https://dash.example.com"]
  }

  assert {
    condition = (
      output.function_url.authorization_type == "NONE" &&
      tolist(output.function_url.cors.allow_origins) == tolist(["https://dash.example.com"]) &&
      tolist(output.function_url.cors.allow_methods) == tolist(["GET"]) &&
      output.function_url.cors.max_age == 3600
    )
    error_message = "function url: ${jsonencode(output.function_url)}"
  }
}

# ---- Validation: the ranges the Rust functions enforce -------------------------------------------

run "public_read_without_origins_is_refused" {
  command = plan
  variables { public_read = true }
  expect_failures = [var.public_read]
}

run "window_0_is_refused" {
  command = plan
  variables { window_seconds = 0 }
  expect_failures = [var.window_seconds]
}

run "window_3601_is_refused" {
  command = plan
  variables { window_seconds = 3601 }
  expect_failures = [var.window_seconds]
}

run "fractional_bucket_is_refused" {
  command = plan
  variables { bucket_seconds = 1.5 }
  expect_failures = [var.bucket_seconds]
}

run "grace_68401_is_refused" {
  command = plan
  variables { grace_seconds = 68401 }
  expect_failures = [var.grace_seconds]
}

run "shards_4097_is_refused" {
  command = plan
  variables { session_shards = 4097 }
  expect_failures = [var.session_shards]
}

run "writes_0_is_refused" {
  command = plan
  variables { max_concurrent_writes = 0 }
  expect_failures = [var.max_concurrent_writes]
}

run "bad_table_name_is_refused" {
  command = plan
  variables { sessions_table = "has space" }
  expect_failures = [var.sessions_table]
}

run "a_bucket_span_over_20_is_refused" {
  command = plan
  variables {
    window_seconds = 15
    bucket_seconds = 5
    grace_seconds  = 600
  }
  expect_failures = [var.grace_seconds]
}

run "parallelization_0_is_refused" {
  command = plan
  variables { aggregate_parallelization_factor = 0 }
  expect_failures = [var.aggregate_parallelization_factor]
}

run "parallelization_10_and_the_widest_bucket_span_are_accepted" {
  command = plan
  variables {
    aggregate_parallelization_factor = 10
    window_seconds                   = 1
    bucket_seconds                   = 1
    grace_seconds                    = 18
  }
  assert {
    condition     = output.settings.aggregate_parallelization_factor == 10
    error_message = "parallelization 10 (proven by the pipeline tests) must be accepted"
  }
}

run "same_tables_are_refused" {
  command = plan
  variables {
    sessions_table = "same"
    counters_table = "same"
  }
  expect_failures = [var.counters_table]
}

run "max_receive_count_0_is_refused" {
  command = plan
  variables { max_receive_count = 0 }
  expect_failures = [var.max_receive_count]
}

run "big_sqs_batch_without_window_is_refused" {
  command = plan
  variables {
    ingest_batch_size                  = 100
    ingest_max_batching_window_seconds = 0
  }
  expect_failures = [var.ingest_batch_size]
}

run "parallelization_11_is_refused" {
  command = plan
  variables { aggregate_parallelization_factor = 11 }
  expect_failures = [var.aggregate_parallelization_factor]
}

run "record_age_30_is_refused" {
  command = plan
  variables { aggregate_max_record_age_seconds = 30 }
  expect_failures = [var.aggregate_max_record_age_seconds]
}

run "bad_name_prefix_is_refused" {
  command = plan
  variables { name_prefix = "live count" }
  expect_failures = [var.name_prefix]
}

run "memory_64_is_refused" {
  command = plan
  variables { memory_size = 64 }
  expect_failures = [var.memory_size]
}

run "log_retention_15_is_refused" {
  command = plan
  variables { log_retention_days = 15 }
  expect_failures = [var.log_retention_days]
}

run "reserved_concurrency_for_an_unknown_function_is_refused" {
  command = plan
  variables { reserved_concurrency = { ingestion = 5 } }
  expect_failures = [var.reserved_concurrency]
}

run "ingest_max_concurrency_1_is_refused" {
  command = plan
  variables { ingest_max_concurrency = 1 }
  expect_failures = [var.ingest_max_concurrency]
}

run "warm_throughput_below_a_new_tables_is_refused" {
  command = plan
  variables { sessions_warm_write_units = 3999 }
  expect_failures = [var.sessions_warm_write_units]
}

run "warm_throughput_for_a_million_viewers_is_passed_on" {
  command = plan
  variables {
    sessions_warm_write_units = 300000
    counters_warm_write_units = 4000
  }
  assert {
    condition     = output.settings.sessions_warm_write_units == 300000 && output.settings.counters_warm_write_units == 4000
    error_message = "warm throughput: ${jsonencode(output.settings)}"
  }
}

run "the_edges_of_every_range_are_accepted" {
  command = plan
  variables {
    window_seconds                     = 3600
    bucket_seconds                     = 3600
    grace_seconds                      = 64800
    session_shards                     = 4096
    max_concurrent_writes              = 1024
    ingest_batch_size                  = 10
    ingest_max_batching_window_seconds = 0
    aggregate_retry_attempts           = -1
    aggregate_max_record_age_seconds   = -1
  }
  assert {
    condition     = output.environment.LIVECOUNT_SESSION_SHARDS == "4096"
    error_message = "edge values must be accepted"
  }
}

run "the_ingest_endpoint_sends_the_body_to_the_events_queue" {
  command = plan

  assert {
    condition = (
      output.ingest_api.route_key == "POST /events" &&
      output.ingest_api.integration.integration_type == "AWS_PROXY" &&
      output.ingest_api.integration.integration_subtype == "SQS-SendMessage" &&
      output.ingest_api.integration.payload_format_version == "1.0" &&
      output.ingest_api.integration.message_body == "$request.body"
    )
    error_message = "integration: ${jsonencode(output.ingest_api.integration)}"
  }

  assert {
    condition = jsondecode(output.ingest_api.policy) == {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "SendEvents"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = "arn:aws:sqs:eu-west-1:123456789012:livecount-events"
      }]
    }
    error_message = "the integration's role may only send to the events queue: ${output.ingest_api.policy}"
  }

  assert {
    condition = (
      output.ingest_api.cors.allow_origins == tolist(["*"]) &&
      tolist(output.ingest_api.cors.allow_methods) == tolist(["POST"]) &&
      output.ingest_api.throttle.rate_limit == 10000 &&
      output.ingest_api.throttle.burst_limit == 5000 &&
      jsondecode(output.ingest_api.access_log_format).status == "$context.status"
    )
    error_message = "cors, throttling, access logs: ${jsonencode(output.ingest_api)}"
  }

  assert {
    condition     = !contains(keys(output.ingest_environment), "LIVECOUNT_TOKEN_SECRET_ARN")
    error_message = "no token secret unless configured"
  }
}

run "ingest_origins_and_throttling_are_variables_and_the_endpoint_can_be_turned_off" {
  command = plan
  variables {
    ingest_cors_origins   = ["https://player.example"]
    ingest_throttle_rate  = 200
    ingest_throttle_burst = 50
  }
  assert {
    condition     = output.ingest_api.cors.allow_origins == tolist(["https://player.example"]) && output.ingest_api.throttle.rate_limit == 200 && output.ingest_api.throttle.burst_limit == 50
    error_message = "ingest settings: ${jsonencode(output.ingest_api)}"
  }
}

run "the_ingest_endpoint_can_be_turned_off" {
  command = plan
  variables { ingest_endpoint = false }
  assert {
    condition     = output.ingest_api == null
    error_message = "ingest_endpoint = false must leave no endpoint"
  }
}

run "signed_sessions_give_ingest_the_secret_arn_and_read_access_to_it_only" {
  command = plan
  variables {
    token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
  }
  assert {
    condition = (
      output.ingest_environment.LIVECOUNT_TOKEN_SECRET_ARN == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf" &&
      !contains(keys(output.environment), "LIVECOUNT_TOKEN_SECRET_ARN")
    )
    error_message = "ingest environment: ${jsonencode(output.ingest_environment)}"
  }
  assert {
    condition = output.policy_statements.ingest[length(output.policy_statements.ingest) - 1] == {
      Sid      = "ReadTokenSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
    }
    error_message = "ingest statements: ${jsonencode(output.policy_statements.ingest)}"
  }
}

run "a_token_secret_under_a_customer_managed_key_lets_ingest_decrypt_through_secrets_manager_only" {
  command = plan
  variables {
    token_secret_arn         = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
    token_secret_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
  }
  assert {
    condition = output.policy_statements.ingest[length(output.policy_statements.ingest) - 1] == {
      Sid       = "DecryptTokenSecret"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
      Condition = { StringLike = { "kms:ViaService" = "secretsmanager.*.amazonaws.com" } }
    }
    error_message = "ingest statements: ${jsonencode(output.policy_statements.ingest)}"
  }
}

run "a_kms_key_that_is_not_a_kms_arn_is_refused" {
  command = plan
  variables { token_secret_kms_key_arn = "alias/my-key" }
  expect_failures = [var.token_secret_kms_key_arn]
}

run "ingest_throttle_rate_0_is_refused" {
  command = plan
  variables { ingest_throttle_rate = 0 }
  expect_failures = [var.ingest_throttle_rate]
}

run "a_token_secret_that_is_not_a_secrets_manager_arn_is_refused" {
  command = plan
  variables { token_secret_arn = "my-secret-value" }
  expect_failures = [var.token_secret_arn]
}

# A function that calls an operation (infra/contract.json, which the Rust tests hold the real
# calls to) without its IAM action fails here.
run "each_role_allows_every_operation_its_function_calls" {
  command = plan
  variables {
    token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
  }
  assert {
    condition = alltrue(flatten([for f, operations in jsondecode(file("../../../contract.json")).operations : [
      for operation in operations : contains(flatten([for st in output.policy_statements[f] : st.Action]), operation)
    ]]))
    error_message = "a role lacks an operation of infra/contract.json: ${jsonencode(output.policy_statements)}"
  }
}
