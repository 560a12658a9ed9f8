# Offline tests of livecount's settings: no provider, no download (`terraform test` here).

variables {
  resources = {
    region                       = "eu-west-1"
    sessions_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions"
    sessions_stream_arn          = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions/stream/2026-01-01T00:00:00.000"
    counters_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
    viewers_table_arn            = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-viewers"
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
      edge      = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-edge"
    }
    function_names = {
      ingest    = "livecount-ingest"
      aggregate = "livecount-aggregate"
      read      = "livecount-read"
      edge      = "livecount-edge"
    }
    # The secret the root module creates when sessions are signed and none is given.
    token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-token-secret-XyZ123"
    # The flood shield's origin secret, which the root module creates only with edge_web_acl_arn:
    # passed here always, so the runs without the shield show the module leaves it unused.
    origin_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-edge-origin-secret-AbC987"
  }
  # Likewise the shield's domain, which exists only with edge_web_acl_arn.
  edge_endpoints = {
    function_url       = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/"
    shield_domain_name = "d111111abcdef8.cloudfront.net"
  }
}

run "defaults_are_the_documented_ones" {
  command = plan

  assert {
    condition = output.environment == {
      LIVECOUNT_DEPLOYMENT            = "livecount"
      LIVECOUNT_SESSIONS_TABLE        = "livecount-sessions"
      LIVECOUNT_COUNTERS_TABLE        = "livecount-counters"
      LIVECOUNT_VIEWERS_TABLE         = "livecount-viewers"
      LIVECOUNT_WINDOW_SECONDS        = "15"
      LIVECOUNT_BUCKET_SECONDS        = "5"
      LIVECOUNT_GRACE_SECONDS         = "60"
      LIVECOUNT_SESSION_SHARDS        = "8"
      LIVECOUNT_MAX_CONCURRENT_WRITES = "16"
      LIVECOUNT_COUNTER_TTL_DAYS      = "62"
      RUST_LOG                        = "info"
    }
    error_message = "environment: ${jsonencode(output.environment)}"
  }

  # Ingest (the relays' queue, authenticated by IAM SendMessage) gets the DLQ and no token secret.
  assert {
    condition = output.environments.ingest == merge(output.environment, {
      LIVECOUNT_DEAD_LETTER_QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/livecount-events-dlq"
    })
    error_message = "ingest: the common environment and the DLQ only: ${jsonencode(output.environments.ingest)}"
  }

  assert {
    condition     = output.environments.aggregate == output.environment && output.environments.read == output.environment
    error_message = "aggregate and read take the common environment"
  }

  assert {
    condition     = output.functions == ["ingest", "aggregate", "read", "edge"]
    error_message = "functions: ${jsonencode(output.functions)}"
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

  # Every function-specific variable (a `functions` list in infra/contract.json) is in those
  # functions' environments only, and in all of them unless optional; defaults are the contract's.
  assert {
    condition = alltrue(flatten([
      for name, rule in jsondecode(file("../../../contract.json")).environment : [
        for f, env in output.environments : (
          contains(keys(env), name) ? contains(rule.functions, f) : (!contains(rule.functions, f) || try(rule.optional, false))
        ) && try(env[name] == tostring(rule.default), true)
      ] if can(rule.functions)
    ]))
    error_message = "function-specific variables differ from infra/contract.json: ${jsonencode(output.environments)}"
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
    viewers_table         = "my-viewers"
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
      LIVECOUNT_VIEWERS_TABLE         = "my-viewers"
      LIVECOUNT_WINDOW_SECONDS        = "30"
      LIVECOUNT_BUCKET_SECONDS        = "10"
      LIVECOUNT_GRACE_SECONDS         = "120"
      LIVECOUNT_SESSION_SHARDS        = "256"
      LIVECOUNT_MAX_CONCURRENT_WRITES = "32"
      LIVECOUNT_COUNTER_TTL_DAYS      = "62"
      RUST_LOG                        = "debug"
    }
    error_message = "environment: ${jsonencode(output.environment)}"
  }
}

# The root module passes null for every variable its caller left unset: the defaults here apply.
run "null_means_the_default" {
  command = plan

  variables {
    window_seconds           = null
    session_shards           = null
    sessions_table           = null
    point_in_time_recovery   = null
    memory_size              = null
    allowed_origins          = null
    reserved_concurrency     = null
    public_edge              = null
    signed_sessions          = null
    badge_cdn                = null
    edge_cors_origins        = null
    edge_timeout_seconds     = null
    refusals_alarm_threshold = null
    edge_web_acl_arn         = null
  }

  assert {
    condition = (
      output.environment.LIVECOUNT_WINDOW_SECONDS == "15" &&
      output.environment.LIVECOUNT_SESSION_SHARDS == "8" &&
      output.environment.LIVECOUNT_SESSIONS_TABLE == "livecount-sessions" &&
      output.settings.point_in_time_recovery == true &&
      output.settings.memory_size == 256 &&
      output.function_url.cors == null &&
      output.settings.public_edge == true &&
      output.settings.signed_sessions == true &&
      output.settings.badge_cdn == true &&
      output.settings.edge_cors_origins == tolist(["*"]) &&
      output.settings.timeout_seconds.edge == 5 &&
      output.settings.refusals_alarm_threshold == 1000 &&
      output.environments.edge.LIVECOUNT_TOKEN_SECRET_ARN != null &&
      output.settings.edge_web_acl_arn == null &&
      output.edge_shield == null
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
        Sid      = "MarkViewers"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-viewers"
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
        Action   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
      },
    ]
    error_message = "read: ${jsonencode(output.policy_statements.read)}"
  }

  # The edge: its log group, the session row, its stream's count, the token secret. Nothing else.
  assert {
    condition = output.policy_statements.edge == [
      {
        Sid      = "OwnLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/livecount-edge:*"
      },
      {
        Sid      = "WriteSessions"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions"
      },
      {
        Sid      = "ReadCounts"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem"]
        Resource = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
      },
      {
        Sid      = "ReadTokenSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-token-secret-XyZ123"
      },
    ]
    error_message = "edge: ${jsonencode(output.policy_statements.edge)}"
  }

  # Only the edge may read the token secret.
  assert {
    condition = alltrue(flatten([for f, statements in output.policy_statements : [
      for st in statements : f == "edge" || !contains(st.Action, "secretsmanager:GetSecretValue")
    ]]))
    error_message = "a role other than the edge's reads the token secret"
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
      "edge_errors", "edge_throttles", "edge_refusals", "edge_writes_failed",
      "dead_letter_arrivals", "aggregate_failure_arrivals", "aggregate_iterator_age", "events_queue_age",
      "pipeline_stalled", "sessions_table_throttled", "counters_table_throttled", "viewers_table_throttled",
      "messages_invalid", "records_not_applied", "unreadable_records", "seconds_missed",
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
      output.alarms.pipeline_stalled.expression == "IF(FILL(applied, 0) + FILL(edgeApplied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)" &&
      output.alarms.pipeline_stalled.queries[0].metric_name == "EventsApplied" &&
      output.alarms.pipeline_stalled.queries[0].dimensions == { Deployment = "livecount", Function = "ingest" } &&
      output.alarms.pipeline_stalled.queries[1].metric_name == "EventsApplied" &&
      output.alarms.pipeline_stalled.queries[1].dimensions == { Deployment = "livecount", Function = "edge" } &&
      output.alarms.pipeline_stalled.queries[2].metric_name == "Invocations" &&
      output.alarms.pipeline_stalled.evaluation_periods == 3
    )
    error_message = "stalled pipeline alarm: ${jsonencode(output.alarms.pipeline_stalled)}"
  }

  assert {
    condition = alltrue([for t in ["sessions", "counters", "viewers"] :
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
    condition = alltrue([for f in ["ingest", "aggregate", "read", "edge"] : alltrue([for m in ["errors", "throttles"] :
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
      output.alarms.records_not_applied.threshold == 0 &&
      output.alarms.seconds_missed.dimensions == { Deployment = "livecount", Function = "aggregate" } &&
      output.alarms.seconds_missed.metric_name == "SecondsMissed" &&
      output.alarms.seconds_missed.threshold == 0
    )
    error_message = "EMF alarms: ${jsonencode([output.alarms.messages_invalid, output.alarms.unreadable_records, output.alarms.records_not_applied])}"
  }

  # The seven refusal reasons of infra/contract.json (RefusedBypass among them, 0 without the
  # flood shield), summed over 5 minutes, above 1000.
  assert {
    condition = (
      output.alarms.edge_refusals.expression == join(" + ", [for i in range(7) : "FILL(r${i}, 0)"]) &&
      [for q in output.alarms.edge_refusals.queries : q.metric_name] == [for m in jsondecode(file("../../../contract.json")).metrics.edge : m if startswith(m, "Refused")] &&
      length(output.alarms.edge_refusals.queries) == 7 &&
      output.alarms.edge_refusals.queries[6].metric_name == "RefusedBypass" &&
      alltrue([for i, q in output.alarms.edge_refusals.queries :
        q.id == "r${i}" && q.namespace == "livecount" && q.statistic == "Sum" &&
        q.dimensions == { Deployment = "livecount", Function = "edge" }
      ]) &&
      output.alarms.edge_refusals.period == 300 &&
      output.alarms.edge_refusals.threshold == 1000 &&
      output.alarms.edge_refusals.comparison_operator == "GreaterThanThreshold" &&
      output.alarms.edge_refusals.evaluation_periods == 1 &&
      strcontains(output.alarms.edge_refusals.description, "inflation attempt")
    )
    error_message = "edge refusals alarm: ${jsonencode(output.alarms.edge_refusals)}"
  }

  assert {
    condition = (
      output.alarms.edge_writes_failed.namespace == "livecount" &&
      output.alarms.edge_writes_failed.metric_name == "WritesFailed" &&
      output.alarms.edge_writes_failed.dimensions == { Deployment = "livecount", Function = "edge" } &&
      output.alarms.edge_writes_failed.statistic == "Sum" &&
      output.alarms.edge_writes_failed.period == 300 &&
      output.alarms.edge_writes_failed.threshold == 0
    )
    error_message = "edge writes failed alarm: ${jsonencode(output.alarms.edge_writes_failed)}"
  }
}

run "alarm_thresholds_are_variables" {
  command = plan

  variables {
    iterator_age_alarm_seconds = 120
    invalid_messages_threshold = 25
    refusals_alarm_threshold   = 50
  }

  assert {
    condition     = output.alarms.aggregate_iterator_age.threshold == 120000 && output.alarms.messages_invalid.threshold == 25 && output.alarms.edge_refusals.threshold == 50
    error_message = "thresholds: ${output.alarms.aggregate_iterator_age.threshold}, ${output.alarms.messages_invalid.threshold}, ${output.alarms.edge_refusals.threshold}"
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

  # The handlers' metric lists are infra/contract.json's, the edge's in its order.
  assert {
    condition = alltrue([for f in ["ingest", "aggregate", "edge"] :
      output.metrics[f] == jsondecode(file("../../../contract.json")).metrics[f]
    ])
    error_message = "metrics differ from infra/contract.json: ${jsonencode(output.metrics)}"
  }

  # The edge's widget: what it counted (left) and what it refused, by reason (right).
  assert {
    condition = [for w in jsondecode(output.dashboard_body).widgets : [
      for metric in w.properties.metrics : [metric[1], try(metric[6].yAxis, "left")]
      ] if try(w.properties.title, "") == "Edge: counted and refused per minute"] == [concat(
      [["EventsApplied", "left"], ["EventsStale", "left"]],
      [for m in jsondecode(file("../../../contract.json")).metrics.edge : [m, "right"] if startswith(m, "Refused")],
    )]
    error_message = "the edge widget graphs EventsApplied and EventsStale, and the seven Refused* on the right"
  }

  # The handlers' row: edge, ingest and aggregate side by side, within 24 columns.
  assert {
    condition = [for w in jsondecode(output.dashboard_body).widgets : [w.properties.title, w.x, w.width] if w.y == 2] == [
      ["Edge: counted and refused per minute", 0, 8],
      ["Ingest (relays): events per minute", 8, 8],
      ["Aggregate: records and updates per minute", 16, 8],
    ]
    error_message = "the handlers' row"
  }

  assert {
    condition = alltrue([for m in [
      ["AWS/Lambda", "IteratorAge", "FunctionName", "livecount-aggregate"],
      ["AWS/Lambda", "Errors", "FunctionName", "livecount-read"],
      ["AWS/Lambda", "Throttles", "FunctionName", "livecount-ingest"],
      ["AWS/Lambda", "Errors", "FunctionName", "livecount-edge"],
      ["AWS/Lambda", "Throttles", "FunctionName", "livecount-edge"],
      ["AWS/Lambda", "Duration", "FunctionName", "livecount-edge"],
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "livecount-events-dlq"],
      ] : contains(flatten([for w in jsondecode(output.dashboard_body).widgets : [
        for metric in try(w.properties.metrics, []) : jsonencode(slice(metric, 0, 4))
    ]]), jsonencode(m))])
    error_message = "iterator age, errors, throttles (the edge's too) or DLQ depth are not graphed"
  }

  assert {
    condition     = alltrue([for w in jsondecode(output.dashboard_body).widgets : w.type == "text" || try(w.properties.region, "") == "eu-west-1"])
    error_message = "every metric widget needs the region"
  }
}

# ---- Validation: the ranges the Rust functions enforce -------------------------------------------

run "breakdowns_reach_every_function" {
  command = plan

  variables {
    breakdowns = "device=web,ios,android,tv;country=US,GB"
  }

  assert {
    condition     = output.environment.LIVECOUNT_BREAKDOWNS == "device=web,ios,android,tv;country=US,GB"
    error_message = "environment: ${jsonencode(output.environment)}"
  }
}

run "a_breakdown_by_an_unknown_dimension_is_refused" {
  command = plan
  variables {
    breakdowns = "colour=red"
  }
  expect_failures = [var.breakdowns]
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

run "a_viewers_table_named_as_another_is_refused" {
  command = plan
  variables {
    counters_table = "same"
    viewers_table  = "same"
  }
  expect_failures = [var.viewers_table]
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

run "a_kms_key_that_is_not_a_kms_arn_is_refused" {
  command = plan
  variables { token_secret_kms_key_arn = "alias/my-key" }
  expect_failures = [var.token_secret_kms_key_arn]
}

run "a_token_secret_that_is_not_a_secrets_manager_arn_is_refused" {
  command = plan
  variables { token_secret_arn = "my-secret-value" }
  expect_failures = [var.token_secret_arn]
}

# A function that calls an operation (infra/contract.json, which the Rust tests hold the real
# calls to) without its IAM action fails here (signed sessions, the default: the edge reads the
# token secret).
run "each_role_allows_every_operation_its_function_calls" {
  command = plan
  assert {
    condition = alltrue(flatten([for f, operations in jsondecode(file("../../../contract.json")).operations : [
      for operation in operations : contains(flatten([for st in output.policy_statements[f] : st.Action]), operation)
    ]]))
    error_message = "a role lacks an operation of infra/contract.json: ${jsonencode(output.policy_statements)}"
  }
}

# ---- The public edge and signed sessions ----------------------------------------------------------

run "the_edge_is_signed_by_default_with_the_secret_the_root_module_creates" {
  command = plan

  assert {
    condition = output.environments.edge == merge(output.environment, {
      LIVECOUNT_CORS_ORIGINS     = "*"
      LIVECOUNT_TOKEN_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-token-secret-XyZ123"
    })
    error_message = "edge environment: ${jsonencode(output.environments.edge)}"
  }

  assert {
    condition = output.token_secret == {
      name                = "livecount-token-secret"
      description         = "livecount: signs the sessions players count with (livecount); rotate with put-secret-value"
      password_length     = 48
      exclude_punctuation = true
    }
    error_message = "the created secret: ${jsonencode(output.token_secret)}"
  }

  assert {
    condition     = alltrue([for f in ["ingest", "aggregate", "read"] : !contains(keys(output.environments[f]), "LIVECOUNT_TOKEN_SECRET_ARN") && !contains(keys(output.environments[f]), "LIVECOUNT_UNSIGNED")])
    error_message = "only the edge gets the token secret"
  }
}

run "a_given_token_secret_is_used_and_none_is_created" {
  command = plan
  variables {
    token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
  }
  assert {
    condition = (
      output.token_secret == null &&
      output.token_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf" &&
      output.environments.edge.LIVECOUNT_TOKEN_SECRET_ARN == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf" &&
      !contains(keys(output.environments.edge), "LIVECOUNT_UNSIGNED") &&
      !contains(keys(output.environments.ingest), "LIVECOUNT_TOKEN_SECRET_ARN")
    )
    error_message = "edge environment: ${jsonencode(output.environments.edge)}"
  }
  assert {
    condition = output.policy_statements.edge[length(output.policy_statements.edge) - 1] == {
      Sid      = "ReadTokenSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
    }
    error_message = "edge statements: ${jsonencode(output.policy_statements.edge)}"
  }
  assert {
    condition     = length(output.policy_statements.ingest) == 4 && !contains(flatten([for st in output.policy_statements.ingest : st.Action]), "secretsmanager:GetSecretValue")
    error_message = "ingest no longer reads the token secret: ${jsonencode(output.policy_statements.ingest)}"
  }
}

run "a_token_secret_under_a_customer_managed_key_lets_the_edge_decrypt_through_secrets_manager_only" {
  command = plan
  variables {
    token_secret_arn         = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
    token_secret_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
  }
  assert {
    condition = output.policy_statements.edge[length(output.policy_statements.edge) - 1] == {
      Sid       = "DecryptTokenSecret"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
      Condition = { StringLike = { "kms:ViaService" = "secretsmanager.*.amazonaws.com" } }
    }
    error_message = "edge statements: ${jsonencode(output.policy_statements.edge)}"
  }
  assert {
    condition     = !contains(flatten([for st in output.policy_statements.ingest : st.Action]), "kms:Decrypt")
    error_message = "ingest no longer decrypts the token secret: ${jsonencode(output.policy_statements.ingest)}"
  }
}

run "unsigned_sessions_only_when_signed_sessions_is_false" {
  command = plan
  variables {
    signed_sessions          = false
    token_secret_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
  }
  assert {
    condition = output.environments.edge == merge(output.environment, {
      LIVECOUNT_CORS_ORIGINS = "*"
      LIVECOUNT_UNSIGNED     = "allow"
    })
    error_message = "unsigned edge environment: ${jsonencode(output.environments.edge)}"
  }
  assert {
    condition     = output.token_secret == null && output.token_secret_arn == null && output.settings.signed_sessions == false
    error_message = "no secret is created for unsigned sessions"
  }
  assert {
    condition     = [for st in output.policy_statements.edge : st.Sid] == ["OwnLogGroup", "WriteSessions", "ReadCounts"]
    error_message = "an unsigned edge reads no secret and decrypts nothing: ${jsonencode(output.policy_statements.edge)}"
  }
}

run "signed_sessions_false_with_a_token_secret_is_refused" {
  command = plan
  variables {
    signed_sessions  = false
    token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
  }
  expect_failures = [var.signed_sessions]
}

run "the_edge_url_is_public_and_answers_cors_itself" {
  command = plan
  assert {
    condition     = output.edge.function_url == { authorization_type = "NONE", cors = null }
    error_message = "edge url: ${jsonencode(output.edge.function_url)}"
  }
  assert {
    condition = output.edge.permissions == {
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
    error_message = "a NONE URL needs InvokeFunctionUrl for * and InvokeFunction through the URL: ${jsonencode(output.edge.permissions)}"
  }
  # The read URL stays AWS_IAM even with origins (signed browser callers).
  assert {
    condition     = output.function_url.authorization_type == "AWS_IAM"
    error_message = "the read URL is always AWS_IAM"
  }
}

run "the_edge_logs_json_without_lambdas_own_lines" {
  command = plan
  assert {
    condition = (
      output.logging.edge == { log_format = "JSON", system_log_level = "WARN", application_log_level = "INFO" } &&
      alltrue([for f in ["ingest", "aggregate", "read"] : output.logging[f].log_format == "Text"])
    )
    error_message = "logging: ${jsonencode(output.logging)}"
  }
  assert {
    condition     = output.settings.timeout_seconds.edge == 5 && !contains(keys(output.settings.reserved_concurrency), "edge")
    error_message = "the edge: 5 s timeout, no reserved concurrency by default"
  }
}

run "edge_origins_timeout_and_concurrency_are_variables" {
  command = plan
  variables {
    edge_cors_origins    = ["https://player.example", "https://tv.example"]
    edge_timeout_seconds = 3
    reserved_concurrency = { edge = 500 }
  }
  assert {
    condition = (
      output.environments.edge.LIVECOUNT_CORS_ORIGINS == "https://player.example,https://tv.example" &&
      output.settings.timeout_seconds.edge == 3 &&
      output.settings.reserved_concurrency == { aggregate = 4, read = 10, edge = 500 }
    )
    error_message = "edge settings: ${jsonencode(output.settings)}"
  }
}

run "an_edge_origin_with_a_comma_is_refused" {
  command = plan
  variables { edge_cors_origins = ["https://a.example,https://b.example"] }
  expect_failures = [var.edge_cors_origins]
}

run "edge_timeout_0_is_refused" {
  command = plan
  variables { edge_timeout_seconds = 0 }
  expect_failures = [var.edge_timeout_seconds]
}

run "a_negative_refusals_threshold_is_refused" {
  command = plan
  variables { refusals_alarm_threshold = -1 }
  expect_failures = [var.refusals_alarm_threshold]
}

# The root module creates no edge log group or function without public_edge: nothing refers to one.
run "without_public_edge_there_is_no_edge" {
  command = plan
  variables {
    public_edge = false
    resources = {
      region                       = "eu-west-1"
      sessions_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions"
      sessions_stream_arn          = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions/stream/2026-01-01T00:00:00.000"
      counters_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
      viewers_table_arn            = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-viewers"
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
      token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-token-secret-XyZ123"
    }
  }
  assert {
    condition = (
      output.functions == ["ingest", "aggregate", "read"] &&
      output.edge == null &&
      keys(output.environments) == ["aggregate", "ingest", "read"] &&
      keys(output.policy_statements) == ["aggregate", "ingest", "read"] &&
      keys(output.logging) == ["aggregate", "ingest", "read"] &&
      length([for k in keys(output.alarms) : k if startswith(k, "edge_")]) == 0 &&
      output.edge_url == null &&
      output.edge_shield == null &&
      output.origin_secret == null
    )
    error_message = "no edge anywhere: ${jsonencode(keys(output.alarms))}"
  }
  assert {
    condition = [for w in jsondecode(output.dashboard_body).widgets : [w.properties.title, w.x, w.width] if w.y == 2] == [
      ["Ingest (relays): events per minute", 0, 12],
      ["Aggregate: records and updates per minute", 12, 12],
    ]
    error_message = "without the edge, ingest and aggregate share the row"
  }
}

# ---- The badge's CDN ---------------------------------------------------------------------------------

run "the_badge_is_served_through_cloudfront_from_the_signed_read_url" {
  command = plan
  assert {
    condition = output.badge_cdn.origin_access_control == {
      name             = "livecount-read"
      description      = "livecount: CloudFront signs its requests to the read Function URL (livecount)"
      origin_type      = "lambda"
      signing_behavior = "always"
      signing_protocol = "sigv4"
    }
    error_message = "origin access control: ${jsonencode(output.badge_cdn.origin_access_control)}"
  }
  # The read function serves a request with this header the badge and nothing else.
  assert {
    condition = (
      output.badge_cdn.origin.custom_headers == { "x-livecount-public" = "1" } &&
      output.badge_cdn.origin.origin_protocol_policy == "https-only" &&
      output.badge_cdn.origin.origin_ssl_protocols == ["TLSv1.2"]
    )
    error_message = "origin: ${jsonencode(output.badge_cdn.origin)}"
  }
  # The origin says max-age=1; the policy allows 0-10 s and keys on the path alone.
  assert {
    condition = output.badge_cdn.cache_policy == {
      name                  = "livecount-badge"
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
    error_message = "cache policy: ${jsonencode(output.badge_cdn.cache_policy)}"
  }
  assert {
    condition = (
      output.badge_cdn.default_cache_behavior == {
        viewer_protocol_policy = "redirect-to-https"
        allowed_methods        = ["GET", "HEAD"]
        cached_methods         = ["GET", "HEAD"]
        compress               = true
      } &&
      output.badge_cdn.price_class == "PriceClass_100" &&
      output.badge_cdn.http_version == "http2and3" &&
      output.badge_cdn.is_ipv6_enabled == true
    )
    error_message = "distribution: ${jsonencode(output.badge_cdn)}"
  }
  assert {
    condition = output.badge_cdn.permissions == {
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
    error_message = "only CloudFront (the distribution, by source ARN) may call the read URL: ${jsonencode(output.badge_cdn.permissions)}"
  }
}

run "the_badge_cdn_can_be_turned_off" {
  command = plan
  variables { badge_cdn = false }
  assert {
    condition     = output.badge_cdn == null && output.function_url.authorization_type == "AWS_IAM"
    error_message = "badge_cdn = false leaves no distribution"
  }
}

# ---- The optional flood shield (edge_web_acl_arn) -------------------------------------------------

run "no_flood_shield_by_default" {
  command = plan
  assert {
    condition = (
      output.settings.edge_web_acl_arn == null &&
      output.origin_secret == null &&
      output.edge_shield == null &&
      !contains(keys(output.environments.edge), "LIVECOUNT_ORIGIN_SECRET_ARN") &&
      !contains([for st in output.policy_statements.edge : st.Sid], "ReadOriginSecret")
    )
    error_message = "no origin secret, no shield distribution, no origin secret for the edge by default: ${jsonencode(output.environments.edge)}"
  }
  # Players post to the Function URL (it ends with "/").
  assert {
    condition     = output.edge_url == "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/events"
    error_message = "edge_url: ${jsonencode(output.edge_url)}"
  }
}

run "a_web_acl_puts_the_flood_shield_in_front_of_the_edge" {
  command = plan
  variables {
    edge_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
  }

  assert {
    condition = output.origin_secret == {
      name                = "livecount-edge-origin-secret"
      description         = "livecount: the flood shield sends this to the edge (livecount)"
      password_length     = 32
      exclude_punctuation = true
    }
    error_message = "the origin secret: ${jsonencode(output.origin_secret)}"
  }

  assert {
    condition = output.environments.edge == merge(output.environment, {
      LIVECOUNT_CORS_ORIGINS      = "*"
      LIVECOUNT_TOKEN_SECRET_ARN  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-token-secret-XyZ123"
      LIVECOUNT_ORIGIN_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-edge-origin-secret-AbC987"
    })
    error_message = "edge environment: ${jsonencode(output.environments.edge)}"
  }

  assert {
    condition     = alltrue([for f in ["ingest", "aggregate", "read"] : !contains(keys(output.environments[f]), "LIVECOUNT_ORIGIN_SECRET_ARN")])
    error_message = "only the edge gets the origin secret"
  }

  # Exactly GetSecretValue on the origin secret, right after the token secret's statement.
  assert {
    condition = (
      [for st in output.policy_statements.edge : st.Sid] == ["OwnLogGroup", "WriteSessions", "ReadCounts", "ReadTokenSecret", "ReadOriginSecret"] &&
      output.policy_statements.edge[4] == {
        Sid      = "ReadOriginSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-edge-origin-secret-AbC987"
      }
    )
    error_message = "edge statements: ${jsonencode(output.policy_statements.edge)}"
  }

  assert {
    condition = alltrue(flatten([for f, statements in output.policy_statements : [
      for st in statements : f == "edge" || !contains(st.Action, "secretsmanager:GetSecretValue")
    ]]))
    error_message = "a role other than the edge's reads a secret"
  }

  assert {
    condition = (
      output.edge_shield.web_acl_id == "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111" &&
      startswith(output.edge_shield.comment, "livecount edge shield") &&
      output.edge_shield.origin == {
        id                     = "edge"
        secret_header          = "x-livecount-origin"
        http_port              = 80
        https_port             = 443
        origin_protocol_policy = "https-only"
        origin_ssl_protocols   = ["TLSv1.2"]
      }
    )
    error_message = "shield: ${jsonencode(output.edge_shield)}"
  }

  # Every method passes (players POST), nothing is cached (managed CachingDisabled); the headers
  # the edge reads and the viewer's country go to the Function URL, not Host, no cookie, no query.
  assert {
    condition = (
      output.edge_shield.default_cache_behavior == {
        viewer_protocol_policy = "redirect-to-https"
        allowed_methods        = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
        cached_methods         = ["GET", "HEAD"]
        compress               = true
        cache_policy_id        = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
      } &&
      output.edge_shield.origin_request_policy.header_behavior == "whitelist" &&
      output.edge_shield.origin_request_policy.headers == ["Content-Type", "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers", "CloudFront-Viewer-Country"] &&
      output.edge_shield.origin_request_policy.cookie_behavior == "none" &&
      output.edge_shield.origin_request_policy.query_string_behavior == "none" &&
      output.edge_shield.price_class == "PriceClass_100" &&
      output.edge_shield.http_version == "http2and3" &&
      output.edge_shield.is_ipv6_enabled == true
    )
    error_message = "shield behaviour: ${jsonencode(output.edge_shield)}"
  }

  assert {
    condition     = output.edge_url == "https://d111111abcdef8.cloudfront.net/events"
    error_message = "edge_url must point at the shield: ${jsonencode(output.edge_url)}"
  }

  # The contract holds with the shield too: LIVECOUNT_ORIGIN_SECRET_ARN in the edge's environment
  # only, every operation allowed, the settings passed through.
  assert {
    condition = alltrue(flatten([
      for name, rule in jsondecode(file("../../../contract.json")).environment : [
        for f, env in output.environments : (
          contains(keys(env), name) ? contains(rule.functions, f) : (!contains(rule.functions, f) || try(rule.optional, false))
        ) && try(env[name] == tostring(rule.default), true)
      ] if can(rule.functions)
    ]))
    error_message = "function-specific variables differ from infra/contract.json: ${jsonencode(output.environments)}"
  }
  assert {
    condition     = output.settings.edge_web_acl_arn == "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    error_message = "settings.edge_web_acl_arn: ${jsonencode(output.settings.edge_web_acl_arn)}"
  }
}

# The origin secret does not depend on signed sessions, and comes before the token key's statement.
run "the_flood_shield_with_unsigned_sessions" {
  command = plan
  variables {
    signed_sessions  = false
    edge_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
  }
  assert {
    condition = (
      output.environments.edge.LIVECOUNT_UNSIGNED == "allow" &&
      output.environments.edge.LIVECOUNT_ORIGIN_SECRET_ARN == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-edge-origin-secret-AbC987" &&
      [for st in output.policy_statements.edge : st.Sid] == ["OwnLogGroup", "WriteSessions", "ReadCounts", "ReadOriginSecret"] &&
      output.token_secret == null && output.origin_secret != null
    )
    error_message = "unsigned behind the shield: ${jsonencode(output.policy_statements.edge)}"
  }
}

run "the_flood_shield_with_a_token_secret_under_a_customer_managed_key" {
  command = plan
  variables {
    edge_web_acl_arn         = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    token_secret_arn         = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf"
    token_secret_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
  }
  assert {
    condition     = [for st in output.policy_statements.edge : st.Sid] == ["OwnLogGroup", "WriteSessions", "ReadCounts", "ReadTokenSecret", "ReadOriginSecret", "DecryptTokenSecret"]
    error_message = "edge statements: ${jsonencode(output.policy_statements.edge)}"
  }
}

run "a_web_acl_without_the_edge_is_refused" {
  command = plan
  variables {
    public_edge      = false
    edge_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
  }
  expect_failures = [var.edge_web_acl_arn]
}

# AWS attaches only CLOUDFRONT-scope web ACLs to a distribution, and creates them in us-east-1.
run "a_regional_web_acl_is_refused" {
  command = plan
  variables { edge_web_acl_arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111" }
  expect_failures = [var.edge_web_acl_arn]
}

run "a_regional_web_acl_in_us_east_1_is_refused" {
  command = plan
  variables { edge_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111" }
  expect_failures = [var.edge_web_acl_arn]
}

run "a_global_web_acl_outside_us_east_1_is_refused" {
  command = plan
  variables { edge_web_acl_arn = "arn:aws:wafv2:eu-west-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111" }
  expect_failures = [var.edge_web_acl_arn]
}

# A WAF Classic web ACL's id (CloudFront's web_acl_id takes one) is not a WAFv2 ARN.
run "a_waf_classic_web_acl_id_is_refused" {
  command = plan
  variables { edge_web_acl_arn = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111" }
  expect_failures = [var.edge_web_acl_arn]
}

# The root module must pass what the shield needs: its origin secret, and its domain for edge_url.
run "the_shield_without_its_origin_secret_is_an_error" {
  command = plan
  variables {
    edge_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    resources = {
      region                       = "eu-west-1"
      sessions_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions"
      sessions_stream_arn          = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-sessions/stream/2026-01-01T00:00:00.000"
      counters_table_arn           = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-counters"
      viewers_table_arn            = "arn:aws:dynamodb:eu-west-1:123456789012:table/livecount-viewers"
      events_queue_arn             = "arn:aws:sqs:eu-west-1:123456789012:livecount-events"
      events_queue_name            = "livecount-events"
      dead_letter_queue_arn        = "arn:aws:sqs:eu-west-1:123456789012:livecount-events-dlq"
      dead_letter_queue_url        = "https://sqs.eu-west-1.amazonaws.com/123456789012/livecount-events-dlq"
      dead_letter_queue_name       = "livecount-events-dlq"
      aggregate_failure_queue_arn  = "arn:aws:sqs:eu-west-1:123456789012:livecount-aggregate-failures"
      aggregate_failure_queue_name = "livecount-aggregate-failures"
      log_group_arns               = {}
      function_names = {
        ingest    = "livecount-ingest"
        aggregate = "livecount-aggregate"
        read      = "livecount-read"
        edge      = "livecount-edge"
      }
      token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-token-secret-XyZ123"
    }
  }
  expect_failures = [output.environments]
}

run "the_shield_without_its_domain_is_an_error" {
  command = plan
  variables {
    edge_web_acl_arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    edge_endpoints   = { function_url = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/" }
  }
  expect_failures = [output.edge_url]
}
