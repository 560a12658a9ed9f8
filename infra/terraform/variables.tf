# Every setting defaults to null here: modules/settings holds the defaults and validates each value
# (the ranges the Rust functions enforce), and its tests run offline. The names are the
# environment variables' names in snake_case: window_seconds is LIVECOUNT_WINDOW_SECONDS.
#
# The defaults are sized for a peak of 13,000 viewers on one stream (the README's sizing rule,
# sim/src/sizing.rs; a unit test holds infra/contract.json to it). For more, raise session_shards,
# the batching settings and the tables' warm throughput as the rule says.

# ---- Code: the zips `make package` builds (cargo-lambda) ---------------------------------------

variable "ingest_zip" {
  description = "The ingest function's zip (holding `bootstrap`). Default: <repo>/target/lambda/ingest/bootstrap.zip."
  type        = string
  default     = null
}

variable "aggregate_zip" {
  description = "The aggregate function's zip. Default: <repo>/target/lambda/aggregate/bootstrap.zip."
  type        = string
  default     = null
}

variable "read_zip" {
  description = "The read function's zip. Default: <repo>/target/lambda/read/bootstrap.zip."
  type        = string
  default     = null
}

variable "edge_zip" {
  description = "The edge function's zip. Default: <repo>/target/lambda/edge/bootstrap.zip."
  type        = string
  default     = null
}

# ---- Settings (validated in modules/settings) ------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of the functions', roles', queues' and log groups' names. Default \"livecount\"."
  type        = string
  default     = null
}

variable "sessions_table" {
  description = "LIVECOUNT_SESSIONS_TABLE: the sessions table's name. Default \"<name_prefix>-sessions\"."
  type        = string
  default     = null
}

variable "counters_table" {
  description = "LIVECOUNT_COUNTERS_TABLE: the counters table's name. Default \"<name_prefix>-counters\"."
  type        = string
  default     = null
}

variable "viewers_table" {
  description = "LIVECOUNT_VIEWERS_TABLE: the viewers table's name (the markers that make unique viewers exact). Default \"<name_prefix>-viewers\"."
  type        = string
  default     = null
}

variable "window_seconds" {
  description = "LIVECOUNT_WINDOW_SECONDS (W, 1-3600): a session counts until W seconds after its last watching event. Default 15."
  type        = number
  default     = null
}

variable "bucket_seconds" {
  description = "LIVECOUNT_BUCKET_SECONDS (B, 1-3600): expiries are rounded up to a multiple of B. Default 5."
  type        = number
  default     = null
}

variable "grace_seconds" {
  description = "LIVECOUNT_GRACE_SECONDS (G, 1-68400): deltas at buckets older than now - G are dropped. Default 60."
  type        = number
  default     = null
}

variable "session_shards" {
  description = "LIVECOUNT_SESSION_SHARDS (S, 1-4096): partition keys per stream; fixed per deployment. Default 8."
  type        = number
  default     = null
}

variable "max_concurrent_writes" {
  description = "LIVECOUNT_MAX_CONCURRENT_WRITES (1-1024): DynamoDB writes one invocation keeps in flight. Default 16."
  type        = number
  default     = null
}

variable "log_level" {
  description = "RUST_LOG of the functions. Default \"info\"."
  type        = string
  default     = null
}

variable "point_in_time_recovery" {
  description = "Point-in-time recovery on every table. Default true."
  type        = bool
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection on every table. Default true."
  type        = bool
  default     = null
}

variable "max_receive_count" {
  description = "Receives of an event before SQS moves it to the dead-letter queue (1-1000); invalid events go there at once, with their reasons. Default 3."
  type        = number
  default     = null
}

variable "ingest_batch_size" {
  description = "SQS messages per ingest invocation (1-10000; above 10 needs a batching window). Default 100."
  type        = number
  default     = null
}

variable "ingest_max_batching_window_seconds" {
  description = "How long Lambda gathers SQS messages (0-300). Default 1."
  type        = number
  default     = null
}

variable "ingest_max_concurrency" {
  description = "Cap on concurrent ingest invocations from SQS (2-1000). Default 50."
  type        = number
  default     = null
}

variable "ingest_timeout_seconds" {
  description = "The ingest function's timeout (1-900); the queue's visibility timeout is 6x this plus the batching window. Default 10."
  type        = number
  default     = null
}

variable "aggregate_batch_size" {
  description = "Stream records per aggregate invocation (1-10000). Default 100."
  type        = number
  default     = null
}

variable "aggregate_max_batching_window_seconds" {
  description = "How long Lambda gathers stream records (0-300). Default 1."
  type        = number
  default     = null
}

variable "aggregate_retry_attempts" {
  description = "Retries of a failing stream batch (-1 to 10000). Default 10."
  type        = number
  default     = null
}

variable "aggregate_max_record_age_seconds" {
  description = "Stream records older than this go to the on-failure queue (-1, or 60-604800). Default max(60, W + B + G)."
  type        = number
  default     = null
}

variable "aggregate_parallelization_factor" {
  description = "Concurrent batches per stream shard (1-10). Default 1."
  type        = number
  default     = null
}

variable "aggregate_timeout_seconds" {
  description = "The aggregate function's timeout (1-900). Default 60."
  type        = number
  default     = null
}

variable "read_timeout_seconds" {
  description = "The read function's timeout (1-900). Default 10."
  type        = number
  default     = null
}

variable "sessions_warm_write_units" {
  description = "Warm throughput of the sessions table, write units per second (4000-10000000): what it serves at once, and so its stream shards. The sizing rule: 0.3 x the peak audience; raise it before a big event (it cannot be lowered). Default none."
  type        = number
  default     = null
}

variable "counters_warm_write_units" {
  description = "Warm throughput of the counters table, write units per second (4000-10000000). Default none."
  type        = number
  default     = null
}

variable "allowed_origins" {
  description = "Origins allowed by CORS to GET the read API with signed (AWS_IAM) requests. Default none."
  type        = list(string)
  default     = null
}

variable "badge_cdn" {
  description = "A CloudFront distribution in front of the read function serving only the badge (GET /api/streams/{id}/viewers, cached 1 s); its URL is badge_url. Default true."
  type        = bool
  default     = null
}

variable "public_edge" {
  description = "The edge function behind a public Function URL (auth NONE): players POST one player's events to edge_url. Default true."
  type        = bool
  default     = null
}

variable "edge_cors_origins" {
  description = "Origins CORS lets post events to the edge (LIVECOUNT_CORS_ORIGINS). Default [\"*\"] (a page cannot count without a token)."
  type        = list(string)
  default     = null
}

variable "edge_timeout_seconds" {
  description = "The edge function's timeout (1-900). Default 5."
  type        = number
  default     = null
}

variable "edge_web_acl_arn" {
  description = "The optional flood shield: the ARN of your AWS WAF web ACL of scope CLOUDFRONT (AWS requires it in us-east-1: arn:aws:wafv2:us-east-1:<account>:global/webacl/<name>/<id>), e.g. with a rate-based rule per IP. Set, a CloudFront distribution with it stands in front of the edge (edge_url points there; the module creates the origin secret <name_prefix>-edge-origin-secret it sends), and the edge refuses requests that go round it (RefusedBypass). Needs public_edge. Default none."
  type        = string
  default     = null
}

variable "signed_sessions" {
  description = "Only signed sessions count: the edge refuses an event without a valid token. Without token_secret_arn the module creates the secret (<name_prefix>-token-secret, 48 random characters; output token_secret_arn). false: the edge gets LIVECOUNT_UNSIGNED=allow, and anyone who can reach it can add viewers (refused together with token_secret_arn). Default true."
  type        = bool
  default     = null
}

variable "token_secret_arn" {
  description = "Your own Secrets Manager secret whose SecretString signs sessions, instead of the one the module creates; the edge accepts tokens of its current and previous versions, read again every 5 minutes. Default: the module creates one (signed_sessions)."
  type        = string
  default     = null
}

variable "token_secret_kms_key_arn" {
  description = "The customer-managed KMS key the token secret is encrypted with, if any: the edge is allowed kms:Decrypt with it, through Secrets Manager only. Default none (aws/secretsmanager)."
  type        = string
  default     = null
}

variable "expected_stream_shards" {
  description = "Shards of the sessions stream to plan for (about audience / 20,000 per stream); sizes the aggregate's reserved concurrency. Default 4."
  type        = number
  default     = null
}

variable "counter_ttl_days" {
  description = "LIVECOUNT_COUNTER_TTL_DAYS (1-365): a stream's counter, lifetime and hour items expire this long after their last update, so its figures are kept this long. Default 62."
  type        = number
  default     = null
}

variable "breakdowns" {
  description = "LIVECOUNT_BREAKDOWNS: what streams are broken down by, as device=web,ios;cdn=a,b (dimensions device, player, cdn, label, country; 1-8 values of 1-12 characters each). Default: none. Each value a batch touches costs one more counter update (docs/design.md, Breakdowns)."
  type        = string
  default     = null
}

variable "architecture" {
  description = "arm64 or x86_64 (make package LAMBDA_ARCH=...). Default arm64."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Memory of each function in MB (128-10240). Default 256."
  type        = number
  default     = null
}

variable "reserved_concurrency" {
  description = "Reserved concurrency by function (keys ingest, aggregate, read, edge). Default aggregate = expected_stream_shards x parallelization factor, read = 10; ingest and edge none."
  type        = map(number)
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups (a CloudWatch Logs value). Default 14."
  type        = number
  default     = null
}

variable "iterator_age_alarm_seconds" {
  description = "The aggregate IteratorAge alarm fires above this many seconds (2 of 3 minutes). Default 10."
  type        = number
  default     = null
}

variable "invalid_messages_threshold" {
  description = "The invalid-message alarm fires when MessagesInvalid (Sum, 5 min) exceeds this. Default 0."
  type        = number
  default     = null
}

variable "refusals_alarm_threshold" {
  description = "The edge-refusals alarm fires when the edge refuses more requests than this in 5 minutes (all Refused* reasons): an inflation attempt or a broken player. Default 1000."
  type        = number
  default     = null
}

# ---- Not settings of the system ---------------------------------------------------------------------

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires (e.g. an SNS topic)."
  type        = list(string)
  default     = []
}

variable "dashboard_name" {
  description = "The CloudWatch dashboard's name. Default: the name prefix."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource that takes them."
  type        = map(string)
  default     = {}
}
