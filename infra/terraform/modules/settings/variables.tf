# The single place where livecount's settings are validated. The ranges are the ones the Rust
# functions enforce at start (core/src/config.rs), so a bad value fails at plan, not at run time.

# ---- Configuration: each variable is the environment variable of the same name -------------

variable "sessions_table" {
  description = "LIVECOUNT_SESSIONS_TABLE: the sessions table's name. Default \"<name_prefix>-sessions\"."
  type        = string
  default     = null
  validation {
    condition     = var.sessions_table == null ? true : can(regex("^[A-Za-z0-9_.-]{3,255}$", var.sessions_table))
    error_message = "sessions_table (LIVECOUNT_SESSIONS_TABLE) must be 3-255 characters of [A-Za-z0-9_.-]."
  }
}

variable "counters_table" {
  description = "LIVECOUNT_COUNTERS_TABLE: the counters table's name. Default \"<name_prefix>-counters\"."
  type        = string
  default     = null
  validation {
    condition     = var.counters_table == null ? true : can(regex("^[A-Za-z0-9_.-]{3,255}$", var.counters_table))
    error_message = "counters_table (LIVECOUNT_COUNTERS_TABLE) must be 3-255 characters of [A-Za-z0-9_.-]."
  }
  validation {
    condition     = var.counters_table == null || var.counters_table != var.sessions_table
    error_message = "counters_table must differ from sessions_table."
  }
}

variable "viewers_table" {
  description = "LIVECOUNT_VIEWERS_TABLE: the viewers table's name (the markers that make unique viewers exact). Default \"<name_prefix>-viewers\"."
  type        = string
  default     = null
  validation {
    condition     = var.viewers_table == null ? true : can(regex("^[A-Za-z0-9_.-]{3,255}$", var.viewers_table))
    error_message = "viewers_table (LIVECOUNT_VIEWERS_TABLE) must be 3-255 characters of [A-Za-z0-9_.-]."
  }
  validation {
    condition     = var.viewers_table == null || (var.viewers_table != var.sessions_table && var.viewers_table != var.counters_table)
    error_message = "viewers_table must differ from sessions_table and counters_table."
  }
}

variable "window_seconds" {
  description = "LIVECOUNT_WINDOW_SECONDS (W): a session counts until W seconds after its last watching event was received."
  type        = number
  default     = 15
  nullable    = false
  validation {
    condition     = var.window_seconds == floor(var.window_seconds) && var.window_seconds >= 1 && var.window_seconds <= 3600
    error_message = "window_seconds (LIVECOUNT_WINDOW_SECONDS) must be a whole number from 1 to 3600."
  }
}

variable "bucket_seconds" {
  description = "LIVECOUNT_BUCKET_SECONDS (B): expiry times are rounded up to a multiple of B."
  type        = number
  default     = 5
  nullable    = false
  validation {
    condition     = var.bucket_seconds == floor(var.bucket_seconds) && var.bucket_seconds >= 1 && var.bucket_seconds <= 3600
    error_message = "bucket_seconds (LIVECOUNT_BUCKET_SECONDS) must be a whole number from 1 to 3600."
  }
}

variable "grace_seconds" {
  description = "LIVECOUNT_GRACE_SECONDS (G): deltas at buckets older than now - G are dropped."
  type        = number
  default     = 60
  nullable    = false
  validation {
    condition     = var.grace_seconds == floor(var.grace_seconds) && var.grace_seconds >= 1 && var.grace_seconds <= 68400
    error_message = "grace_seconds (LIVECOUNT_GRACE_SECONDS) must be a whole number from 1 to 68400."
  }
  validation {
    # The live counter item holds the buckets of W + B + G: at most 20 keep it within 1 KB.
    condition     = floor((var.window_seconds + var.bucket_seconds + var.grace_seconds) / var.bucket_seconds) <= 20
    error_message = "(window_seconds + bucket_seconds + grace_seconds) / bucket_seconds may be at most 20, so the live counter item stays within 1 KB."
  }
}

variable "session_shards" {
  description = "LIVECOUNT_SESSION_SHARDS (S): partition keys per stream in the sessions table; fixed per deployment."
  type        = number
  default     = 8
  nullable    = false
  validation {
    condition     = var.session_shards == floor(var.session_shards) && var.session_shards >= 1 && var.session_shards <= 4096
    error_message = "session_shards (LIVECOUNT_SESSION_SHARDS) must be a whole number from 1 to 4096."
  }
}

variable "max_concurrent_writes" {
  description = "LIVECOUNT_MAX_CONCURRENT_WRITES: DynamoDB writes one invocation keeps in flight."
  type        = number
  default     = 16
  nullable    = false
  validation {
    condition     = var.max_concurrent_writes == floor(var.max_concurrent_writes) && var.max_concurrent_writes >= 1 && var.max_concurrent_writes <= 1024
    error_message = "max_concurrent_writes (LIVECOUNT_MAX_CONCURRENT_WRITES) must be a whole number from 1 to 1024."
  }
}

variable "log_level" {
  description = "RUST_LOG of the functions."
  type        = string
  default     = "info"
  nullable    = false
  validation {
    condition     = length(var.log_level) > 0
    error_message = "log_level (RUST_LOG) must not be empty."
  }
}

variable "name_prefix" {
  description = "Prefix of the functions', roles', queues' and log groups' names (livecount-ingest, ...)."
  type        = string
  default     = "livecount"
  nullable    = false
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 1-40 characters of [A-Za-z0-9_-] (function and role names are limited to 64)."
  }
}

# ---- Tables ---------------------------------------------------------------------------------------

variable "point_in_time_recovery" {
  description = "Point-in-time recovery on every table."
  type        = bool
  default     = true
  nullable    = false
}

variable "deletion_protection" {
  description = "Deletion protection on every table."
  type        = bool
  default     = true
  nullable    = false
}

# ---- Events queue and ingest -----------------------------------------------------------------

variable "max_receive_count" {
  description = "Receives of an event before SQS moves it to the dead-letter queue."
  type        = number
  default     = 3
  nullable    = false
  validation {
    condition     = var.max_receive_count == floor(var.max_receive_count) && var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "ingest_batch_size" {
  description = "SQS messages per ingest invocation (above 10 needs a batching window of at least 1 s)."
  type        = number
  default     = 100
  nullable    = false
  validation {
    condition     = var.ingest_batch_size == floor(var.ingest_batch_size) && var.ingest_batch_size >= 1 && var.ingest_batch_size <= 10000
    error_message = "ingest_batch_size must be a whole number from 1 to 10000."
  }
  validation {
    condition     = var.ingest_batch_size <= 10 || var.ingest_max_batching_window_seconds >= 1
    error_message = "an ingest_batch_size above 10 needs ingest_max_batching_window_seconds of at least 1."
  }
}

variable "ingest_max_batching_window_seconds" {
  description = "How long Lambda gathers SQS messages before invoking ingest."
  type        = number
  default     = 1
  nullable    = false
  validation {
    condition     = var.ingest_max_batching_window_seconds == floor(var.ingest_max_batching_window_seconds) && var.ingest_max_batching_window_seconds >= 0 && var.ingest_max_batching_window_seconds <= 300
    error_message = "ingest_max_batching_window_seconds must be a whole number from 0 to 300."
  }
}

variable "ingest_timeout_seconds" {
  description = "The ingest function's timeout; the events queue's visibility timeout is 6x this plus the batching window."
  type        = number
  default     = 10
  nullable    = false
  validation {
    condition     = var.ingest_timeout_seconds == floor(var.ingest_timeout_seconds) && var.ingest_timeout_seconds >= 1 && var.ingest_timeout_seconds <= 900
    error_message = "ingest_timeout_seconds must be a whole number from 1 to 900."
  }
}

variable "ingest_max_concurrency" {
  description = "Cap on concurrent ingest invocations from SQS (2-1000); null: no cap."
  type        = number
  default     = 50
  validation {
    condition     = var.ingest_max_concurrency == null ? true : (var.ingest_max_concurrency == floor(var.ingest_max_concurrency) && var.ingest_max_concurrency >= 2 && var.ingest_max_concurrency <= 1000)
    error_message = "ingest_max_concurrency must be null or a whole number from 2 to 1000."
  }
}

# ---- Aggregate (sessions stream) ----------------------------------------------------------------

variable "aggregate_batch_size" {
  description = "Stream records per aggregate invocation."
  type        = number
  default     = 100
  nullable    = false
  validation {
    condition     = var.aggregate_batch_size == floor(var.aggregate_batch_size) && var.aggregate_batch_size >= 1 && var.aggregate_batch_size <= 10000
    error_message = "aggregate_batch_size must be a whole number from 1 to 10000."
  }
}

variable "aggregate_max_batching_window_seconds" {
  description = "How long Lambda gathers stream records before invoking aggregate."
  type        = number
  default     = 1
  nullable    = false
  validation {
    condition     = var.aggregate_max_batching_window_seconds == floor(var.aggregate_max_batching_window_seconds) && var.aggregate_max_batching_window_seconds >= 0 && var.aggregate_max_batching_window_seconds <= 300
    error_message = "aggregate_max_batching_window_seconds must be a whole number from 0 to 300."
  }
}

variable "aggregate_retry_attempts" {
  description = "Retries of a failing stream batch (-1: until the record expires)."
  type        = number
  default     = 5
  nullable    = false
  validation {
    condition     = var.aggregate_retry_attempts == floor(var.aggregate_retry_attempts) && var.aggregate_retry_attempts >= -1 && var.aggregate_retry_attempts <= 10000
    error_message = "aggregate_retry_attempts must be a whole number from -1 to 10000."
  }
}

variable "aggregate_max_record_age_seconds" {
  description = "Stream records older than this go to the on-failure queue (-1: never). Default max(60, W + B + G): past it no count depends on a record."
  type        = number
  default     = null
  nullable    = true
  validation {
    condition = var.aggregate_max_record_age_seconds == null ? true : (var.aggregate_max_record_age_seconds == -1 || (
      var.aggregate_max_record_age_seconds == floor(var.aggregate_max_record_age_seconds) &&
      var.aggregate_max_record_age_seconds >= 60 && var.aggregate_max_record_age_seconds <= 604800
    ))
    error_message = "aggregate_max_record_age_seconds must be -1 or a whole number from 60 to 604800."
  }
}

variable "expected_stream_shards" {
  description = "Shards of the sessions stream to plan for (about audience / 20,000 per stream, at least 1); the aggregate's reserved concurrency is this x the parallelization factor."
  type        = number
  default     = 4
  nullable    = false
  validation {
    condition     = var.expected_stream_shards == floor(var.expected_stream_shards) && var.expected_stream_shards >= 1 && var.expected_stream_shards <= 1000
    error_message = "expected_stream_shards must be a whole number from 1 to 1000."
  }
}

variable "counter_ttl_days" {
  description = "LIVECOUNT_COUNTER_TTL_DAYS (1-365): a stream's counter, lifetime and hour items expire this long after their last update, so its figures are kept this long."
  type        = number
  default     = 62
  nullable    = false
  validation {
    condition     = var.counter_ttl_days == floor(var.counter_ttl_days) && var.counter_ttl_days >= 1 && var.counter_ttl_days <= 365
    error_message = "counter_ttl_days (LIVECOUNT_COUNTER_TTL_DAYS) must be a whole number from 1 to 365."
  }
}

variable "breakdowns" {
  description = "LIVECOUNT_BREAKDOWNS: what streams are broken down by, as device=web,ios;cdn=a,b (dimensions device, player, cdn, label, country; 1-8 values of 1-12 characters each). Empty: none, the default. Each value a batch touches costs one more counter update (docs/design.md, Breakdowns)."
  type        = string
  default     = ""
  nullable    = false
  validation {
    condition     = can(regex("^$|^(device|player|cdn|label|country)=[A-Za-z0-9._-]{1,12}(,[A-Za-z0-9._-]{1,12}){0,7}(;(device|player|cdn|label|country)=[A-Za-z0-9._-]{1,12}(,[A-Za-z0-9._-]{1,12}){0,7})*$", var.breakdowns))
    error_message = "breakdowns (LIVECOUNT_BREAKDOWNS) is dimension=value,value;... with dimensions device, player, cdn, label, country and 1-8 values of 1-12 characters of A-Z a-z 0-9 . _ - each."
  }
}

variable "architecture" {
  description = "arm64 (Graviton, cheaper per GB-second) or x86_64; make package builds the matching zips."
  type        = string
  default     = "arm64"
  nullable    = false
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "aggregate_parallelization_factor" {
  description = "Concurrent batches per stream shard."
  type        = number
  default     = 1
  nullable    = false
  validation {
    condition     = var.aggregate_parallelization_factor == floor(var.aggregate_parallelization_factor) && var.aggregate_parallelization_factor >= 1 && var.aggregate_parallelization_factor <= 10
    error_message = "aggregate_parallelization_factor must be a whole number from 1 to 10."
  }
}

variable "aggregate_timeout_seconds" {
  description = "The aggregate function's timeout."
  type        = number
  default     = 60
  nullable    = false
  validation {
    condition     = var.aggregate_timeout_seconds == floor(var.aggregate_timeout_seconds) && var.aggregate_timeout_seconds >= 1 && var.aggregate_timeout_seconds <= 900
    error_message = "aggregate_timeout_seconds must be a whole number from 1 to 900."
  }
}

# ---- Tables -----------------------------------------------------------------------------------------

variable "sessions_warm_write_units" {
  description = "Warm throughput of the sessions table, write units per second (4000-10000000); null: none. The sizing rule: 0.3 x the peak audience."
  type        = number
  default     = null
  validation {
    condition     = var.sessions_warm_write_units == null ? true : (var.sessions_warm_write_units == floor(var.sessions_warm_write_units) && var.sessions_warm_write_units >= 4000 && var.sessions_warm_write_units <= 10000000)
    error_message = "sessions_warm_write_units must be null or a whole number from 4000 to 10000000."
  }
}

variable "counters_warm_write_units" {
  description = "Warm throughput of the counters table, write units per second (4000-10000000); null: none."
  type        = number
  default     = null
  validation {
    condition     = var.counters_warm_write_units == null ? true : (var.counters_warm_write_units == floor(var.counters_warm_write_units) && var.counters_warm_write_units >= 4000 && var.counters_warm_write_units <= 10000000)
    error_message = "counters_warm_write_units must be null or a whole number from 4000 to 10000000."
  }
}

# ---- Read API and the badge's CDN -----------------------------------------------------------------

variable "allowed_origins" {
  description = "Origins allowed by CORS to GET the read API with signed (AWS_IAM) requests."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "read_timeout_seconds" {
  description = "The read function's timeout."
  type        = number
  default     = 10
  nullable    = false
  validation {
    condition     = var.read_timeout_seconds == floor(var.read_timeout_seconds) && var.read_timeout_seconds >= 1 && var.read_timeout_seconds <= 900
    error_message = "read_timeout_seconds must be a whole number from 1 to 900."
  }
}

variable "badge_cdn" {
  description = "A CloudFront distribution in front of the read function that serves only the badge (GET /api/streams/{id}/viewers, cached 1 s), so the audience's reads do not grow with it."
  type        = bool
  default     = true
  nullable    = false
}

# ---- The public edge (players) ---------------------------------------------------------------------

variable "public_edge" {
  description = "The edge function behind a public Function URL (auth NONE): browsers, TVs and phones POST one player's events to /events."
  type        = bool
  default     = true
  nullable    = false
}

variable "edge_cors_origins" {
  description = "LIVECOUNT_CORS_ORIGINS of the edge: origins CORS lets post events ([\"*\"] for any: a page cannot count without a token)."
  type        = list(string)
  default     = ["*"]
  nullable    = false
  validation {
    condition     = alltrue([for o in var.edge_cors_origins : can(regex("^[^,\\s]+$", o))])
    error_message = "edge_cors_origins must be origins without commas or spaces (they are joined with \",\" into LIVECOUNT_CORS_ORIGINS)."
  }
}

variable "edge_timeout_seconds" {
  description = "The edge function's timeout."
  type        = number
  default     = 5
  nullable    = false
  validation {
    condition     = var.edge_timeout_seconds == floor(var.edge_timeout_seconds) && var.edge_timeout_seconds >= 1 && var.edge_timeout_seconds <= 900
    error_message = "edge_timeout_seconds must be a whole number from 1 to 900."
  }
}

variable "edge_web_acl_arn" {
  description = "The optional flood shield: the ARN of an AWS WAF web ACL of scope CLOUDFRONT (created in us-east-1, e.g. with a rate-based rule per IP). Set, players post through a CloudFront distribution with that web ACL in front of the edge, which refuses requests that did not come through it (RefusedBypass). Null: no shield."
  type        = string
  default     = null
  validation {
    condition     = var.edge_web_acl_arn == null || var.public_edge
    error_message = "edge_web_acl_arn puts the flood shield in front of the public edge, but public_edge is false: drop edge_web_acl_arn or turn public_edge on."
  }
  validation {
    condition     = var.edge_web_acl_arn == null || can(regex("^arn:aws:wafv2:us-east-1:[0-9]{12}:global/webacl/[^/]+/[^/]+$", var.edge_web_acl_arn))
    error_message = "edge_web_acl_arn must be the ARN of a CLOUDFRONT-scope AWS WAF web ACL, which AWS requires to be created in us-east-1: arn:aws:wafv2:us-east-1:<account>:global/webacl/<name>/<id> (a REGIONAL web ACL's ARN has /regional/ and cannot be attached to CloudFront)."
  }
}

variable "signed_sessions" {
  description = "Only signed sessions count: the edge refuses an event without a valid token. The module creates the token secret unless token_secret_arn is given; false gives the edge LIVECOUNT_UNSIGNED=allow (anyone who can reach it can add viewers)."
  type        = bool
  default     = true
  nullable    = false
  validation {
    condition     = var.signed_sessions || var.token_secret_arn == null
    error_message = "signed_sessions is false but token_secret_arn is given; drop one of them."
  }
}

variable "token_secret_arn" {
  description = "A Secrets Manager secret whose SecretString signs sessions (LIVECOUNT_TOKEN_SECRET_ARN of the edge). Default: a secret the root module creates (<name_prefix>-token-secret). Only the ARN reaches the function."
  type        = string
  default     = null
  validation {
    condition     = var.token_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.token_secret_arn))
    error_message = "token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "token_secret_kms_key_arn" {
  description = "The customer-managed KMS key the token secret is encrypted with, if not aws/secretsmanager: the edge may kms:Decrypt with it, through Secrets Manager only."
  type        = string
  default     = null
  validation {
    condition     = var.token_secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.token_secret_kms_key_arn))
    error_message = "token_secret_kms_key_arn must be a KMS key ARN."
  }
}

# ---- All functions --------------------------------------------------------------------------------

variable "memory_size" {
  description = "Memory of each function, in MB."
  type        = number
  default     = 256
  nullable    = false
  validation {
    condition     = var.memory_size == floor(var.memory_size) && var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be a whole number from 128 to 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency by function (ingest, aggregate, read, edge); a function left out uses the account's unreserved pool (aggregate and read have defaults)."
  type        = map(number)
  default     = {}
  nullable    = false
  validation {
    condition     = alltrue([for k, v in var.reserved_concurrency : contains(["ingest", "aggregate", "read", "edge"], k) && v == floor(v) && v >= 0])
    error_message = "reserved_concurrency keys must be ingest, aggregate, read or edge, with whole, non-negative values."
  }
}

# ---- Observability ----------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 14
  nullable    = false
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "iterator_age_alarm_seconds" {
  description = "The aggregate IteratorAge alarm fires above this many seconds."
  type        = number
  default     = 10
  nullable    = false
  validation {
    condition     = var.iterator_age_alarm_seconds >= 1
    error_message = "iterator_age_alarm_seconds must be at least 1."
  }
}

variable "invalid_messages_threshold" {
  description = "The invalid-message alarm fires when MessagesInvalid (Sum, 5 min) exceeds this."
  type        = number
  default     = 0
  nullable    = false
  validation {
    condition     = var.invalid_messages_threshold >= 0
    error_message = "invalid_messages_threshold must not be negative."
  }
}

variable "refusals_alarm_threshold" {
  description = "The edge_refusals alarm fires when the edge refuses more requests than this (Sum of the Refused* metrics, 5 min): an inflation attempt or a broken player."
  type        = number
  default     = 1000
  nullable    = false
  validation {
    condition     = var.refusals_alarm_threshold >= 0 && var.refusals_alarm_threshold <= 1000000000
    error_message = "refusals_alarm_threshold must be from 0 to 1000000000."
  }
}

# ---- The deployed resources the policies, alarms and dashboard refer to -----------------------------

variable "resources" {
  description = "ARNs and names of the resources the root module created (unknown until apply is fine)."
  type = object({
    region                       = string
    sessions_table_arn           = string
    sessions_stream_arn          = string
    counters_table_arn           = string
    viewers_table_arn            = string
    events_queue_arn             = string
    events_queue_name            = string
    dead_letter_queue_arn        = string
    dead_letter_queue_url        = string
    dead_letter_queue_name       = string
    aggregate_failure_queue_arn  = string
    aggregate_failure_queue_name = string
    log_group_arns               = map(string)
    function_names               = map(string)
    # The secret the root module created (signed_sessions without token_secret_arn), else null.
    token_secret_arn = optional(string)
    # The flood shield's origin secret the root module created (edge_web_acl_arn), else null.
    origin_secret_arn = optional(string)
  })
}

# Apart from `resources`: the edge's URL and the shield's domain depend on the edge function, which
# depends on this module's environments and policies (one variable holding both would be a cycle).
variable "edge_endpoints" {
  description = "Where players reach the edge, once the root module created it: the edge's Function URL (https://<id>.lambda-url.<region>.on.aws/; null without public_edge) and the flood shield's domain (<id>.cloudfront.net; null without edge_web_acl_arn). Unknown until apply is fine."
  type = object({
    function_url       = optional(string)
    shield_domain_name = optional(string)
  })
  default  = {}
  nullable = false
}
