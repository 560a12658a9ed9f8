// The livecount construct: players -> edge (public Function URL) -> sessions table -> stream ->
// aggregate -> counters table <- read (Function URL, IAM) <- CloudFront (the badge). Relays send
// batches to SQS -> ingest -> sessions table. See docs/design.md for the algorithm; this file only
// wires AWS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnResource, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';

/** The CloudWatch namespace of the metrics the handlers emit in Embedded Metric Format. */
export const METRICS_NAMESPACE = 'livecount';
/** Metric names the ingest handler emits (dimension `Function` = `ingest`). */
export const INGEST_METRICS = [
  'EventsApplied',
  'EventsStale',
  'MessagesInvalid',
  'MessagesDeadLettered',
  'MessagesFailed',
  'MessagesExpired',
  'TokensRejected',
] as const;
/** Metric names the aggregate handler emits (dimension `Function` = `aggregate`). */
export const AGGREGATE_METRICS = [
  'RecordsApplied',
  'DuplicateRecords',
  'RecordsNotApplied',
  'DeltasLate',
  'UnreadableRecords',
  'CounterUpdates',
  'StreamsFailed',
  'StreamsDeferred',
  'ShorterRedeliveries',
  'StartsLate',
  'SecondsMissed',
] as const;

/** Metric names the edge handler emits (dimension `Function` = `edge`): refusals by reason first. */
export const EDGE_METRICS = [
  'RefusedInvalid',
  'RefusedTooLarge',
  'RefusedManySessions',
  'RefusedUnsigned',
  'RefusedForged',
  'RefusedExpired',
  'RefusedBypass',
  'EventsApplied',
  'EventsStale',
  'WritesFailed',
  'CountReads',
] as const;
/** The edge's refusal metrics, one per reason. */
export const REFUSAL_METRICS = EDGE_METRICS.filter((m) => m.startsWith('Refused'));

/** The four functions, by the name of their binary and of their `target/lambda/<name>/` folder. */
export type FunctionName = 'ingest' | 'aggregate' | 'read' | 'edge';
export const FUNCTION_NAMES: readonly FunctionName[] = ['ingest', 'aggregate', 'read', 'edge'];
/** The header CloudFront adds to each badge request it forwards: the read function then serves only the badge. */
export const PUBLIC_HEADER = 'x-livecount-public';
/**
 * The viewer headers the flood shield forwards to the edge (what it reads: the body's type and
 * CORS), and the CloudFront header it adds with the viewer's ISO 3166-1 alpha-2 country.
 */
export const EDGE_SHIELD_HEADERS = [
  'Content-Type',
  'Origin',
  'Access-Control-Request-Method',
  'Access-Control-Request-Headers',
  'CloudFront-Viewer-Country',
];

/** The header the flood shield adds to each request it forwards to the edge (its value is the origin secret). */
export const ORIGIN_HEADER = 'x-livecount-origin';

/**
 * The defaults are sized for a peak of 13,000 viewers on one stream (the README's sizing rule,
 * `sim/src/sizing.rs`; a unit test holds `infra/contract.json` to it). For more, raise
 * `sessionShards`, the batching settings and the tables' warm throughput as the rule says.
 */
export interface LivecountProps {
  // ---- Code -------------------------------------------------------------------------------
  /**
   * The ingest function's code: a zip file, or a directory holding an executable `bootstrap`.
   * @default `<repo>/target/lambda/ingest/bootstrap.zip` (built by `make package`)
   */
  readonly ingestCode?: string;
  /** @default `<repo>/target/lambda/aggregate/bootstrap.zip` */
  readonly aggregateCode?: string;
  /** @default `<repo>/target/lambda/read/bootstrap.zip` */
  readonly readCode?: string;
  /** @default `<repo>/target/lambda/edge/bootstrap.zip` */
  readonly edgeCode?: string;

  // ---- Configuration: each prop is the environment variable of the same name ---------------
  /** `LIVECOUNT_SESSIONS_TABLE`: the sessions table's name. @default `${stackName}-sessions` */
  readonly sessionsTable?: string;
  /** `LIVECOUNT_COUNTERS_TABLE`: the counters table's name. @default `${stackName}-counters` */
  readonly countersTable?: string;
  /**
   * `LIVECOUNT_VIEWERS_TABLE`: the viewers table's name (the markers that make unique viewers
   * exact: one item per stream and `userId`, written only by the aggregator).
   * @default `${stackName}-viewers`
   */
  readonly viewersTable?: string;
  /**
   * `LIVECOUNT_DEPLOYMENT`: the `Deployment` dimension of the functions' metrics, so two
   * deployments in one account and region keep their metrics and alarms apart.
   * @default the stack name
   */
  readonly deploymentName?: string;
  /**
   * `LIVECOUNT_BREAKDOWNS`: what streams are broken down by, as `device=web,ios;cdn=a,b`
   * (dimensions `device`, `player`, `cdn`, `label`, `country`; 1-8 values of 1-12 characters
   * each). Each value a batch touches costs one more counter update (docs/design.md,
   * "Breakdowns").
   * @default none
   */
  readonly breakdowns?: string;
  /** `LIVECOUNT_COUNTER_TTL_DAYS` (1-365): a stream's counter, lifetime and hour items expire this long after their last update, so its figures are kept this long. @default 62 */
  readonly counterTtlDays?: number;
  /** `LIVECOUNT_WINDOW_SECONDS` (W, 1-3600). @default 15 */
  readonly windowSeconds?: number;
  /** `LIVECOUNT_BUCKET_SECONDS` (B, 1-3600). @default 5 */
  readonly bucketSeconds?: number;
  /** `LIVECOUNT_GRACE_SECONDS` (G, 1-68400). @default 60 */
  readonly graceSeconds?: number;
  /** `LIVECOUNT_SESSION_SHARDS` (S, 1-4096, fixed per deployment). @default 8 */
  readonly sessionShards?: number;
  /** `LIVECOUNT_MAX_CONCURRENT_WRITES` (1-1024). @default 16 */
  readonly maxConcurrentWrites?: number;
  /** `RUST_LOG` of all three functions. @default 'info' */
  readonly logLevel?: string;

  // ---- Tables ------------------------------------------------------------------------------
  /** Point-in-time recovery on every table. @default true */
  readonly pointInTimeRecovery?: boolean;
  /** What happens to the tables when they leave the stack. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** Deletion protection on every table. @default true */
  readonly deletionProtection?: boolean;

  // ---- Events queue and ingest ----------------------------------------------------------------
  /**
   * Receives before a message moves to the dead-letter queue (1-1000). Invalid messages go there
   * at once, with their reasons; this counts failed writes. @default 3
   */
  readonly maxReceiveCount?: number;
  /** SQS messages per ingest invocation (1-10000; above 10 needs a batching window). @default 100 */
  readonly ingestBatchSize?: number;
  /**
   * Warm throughput of the sessions table, write units per second (4000-10000000): what it
   * serves at once, and so its partitions and stream shards. The sizing rule: 0.3 x the peak
   * audience. Raise it before a big event (it cannot be lowered).
   * @default none (a new on-demand table: 4,000, then double its previous peak)
   */
  readonly sessionsWarmWriteUnits?: number;
  /**
   * Warm throughput of the counters table, write units per second (4000-10000000).
   * @default none
   */
  readonly countersWarmWriteUnits?: number;
  /** How long Lambda gathers SQS messages (0-300 s). @default 1 second */
  readonly ingestMaxBatchingWindow?: Duration;
  /**
   * Cap on concurrent ingest invocations from SQS (2-1000): each keeps `maxConcurrentWrites`
   * session writes in flight, so 50 x 16 writes stay within a new on-demand table's capacity.
   * @default 50
   */
  readonly ingestMaxConcurrency?: number;
  /**
   * @default 10 seconds; the queue's visibility timeout is 6x this plus the batching window, and
   * its retention the longer of 2 x (W + B + G) and maxReceiveCount visibility timeouts
   */
  readonly ingestTimeout?: Duration;

  // ---- The public edge (players) ----------------------------------------------------------------
  /**
   * The edge function behind a public Function URL: what browsers, TVs and phones post their
   * events to (`POST /events`, one player's events per request). @default true
   */
  readonly publicEdge?: boolean;
  /** Origins CORS lets post events (`['*']` for any: a page cannot count without a token). @default ['*'] */
  readonly edgeCorsOrigins?: string[];
  /** @default 5 seconds */
  readonly edgeTimeout?: Duration;
  /**
   * The optional flood shield: the ARN of an AWS WAF web ACL of scope CLOUDFRONT (created in
   * us-east-1, e.g. with a rate-based rule per IP). When set, players post through a CloudFront
   * distribution with that web ACL in front of the edge, and the edge refuses requests that did
   * not come through it (docs/deploy.md, "Floods"). @default none: the edge absorbs floods itself
   */
  readonly edgeWebAclArn?: string;
  /**
   * Only signed sessions count (the edge refuses an event without a valid token). Turning it off
   * lets anyone who can reach the edge add viewers (docs/deploy.md, "What unsigned exposes").
   * @default true
   */
  readonly signedSessions?: boolean;
  /**
   * A Secrets Manager secret (ARN) whose SecretString signs sessions (`LIVECOUNT_TOKEN_SECRET_ARN`;
   * the edge reads its current and previous versions at start and every 5 minutes, so a rotation
   * refuses no valid token). @default a secret the stack creates (48 random characters)
   */
  readonly tokenSecretArn?: string;
  /**
   * The customer-managed KMS key (ARN) the token secret is encrypted with, if not the AWS-managed
   * one: the edge is allowed `kms:Decrypt` on it, through Secrets Manager only.
   * @default none: the secret uses the `aws/secretsmanager` key
   */
  readonly tokenSecretKmsKeyArn?: string;
  /**
   * A CloudFront distribution in front of the read function serving only the badge
   * (`GET /api/streams/{id}/viewers`, cached 1 s), so the audience's reads do not grow with it.
   * @default true
   */
  readonly badgeCdn?: boolean;

  // ---- Aggregate (sessions stream) ------------------------------------------------------------
  /** Stream records per aggregate invocation (1-10000). @default 100 */
  readonly aggregateBatchSize?: number;
  /** (0-300 s) @default 1 second */
  readonly aggregateMaxBatchingWindow?: Duration;
  /** Retries of a failing batch (-1 = until the record expires, up to 10000). @default 5 */
  readonly aggregateRetryAttempts?: number;
  /**
   * Records older than this are sent to the on-failure queue (60 s - 7 days): past W + B + G no
   * count depends on them any more. @default max(60 s, W + B + G)
   */
  readonly aggregateMaxRecordAge?: Duration;
  /**
   * Shards of the sessions stream to plan for (one per table partition: about audience / 20,000
   * per stream, at least 1). The aggregate's reserved concurrency is this x the parallelization
   * factor. @default 4
   */
  readonly expectedStreamShards?: number;
  /** Concurrent batches per stream shard (1-10). @default 1 */
  readonly aggregateParallelizationFactor?: number;
  /** @default 60 seconds */
  readonly aggregateTimeout?: Duration;

  // ---- Read API -------------------------------------------------------------------------------
  /** @default 10 seconds */
  readonly readTimeout?: Duration;
  /** Origins allowed by CORS to GET the read API with signed requests (e.g. the dashboard's origin). @default none */
  readonly allowedOrigins?: string[];

  // ---- All functions --------------------------------------------------------------------------
  /** @default 256 */
  readonly memorySize?: number;
  /**
   * Reserved concurrency of each function. @default aggregate: expectedStreamShards x
   * aggregateParallelizationFactor (it can always read every lane); read: 10 (dashboards and
   * the CDN's misses cannot starve the pipeline); ingest: none (capped by ingestMaxConcurrency
   * instead); edge: none (it scales with the audience; a refusal costs about a millisecond)
   */
  readonly reservedConcurrency?: Partial<Record<FunctionName, number>>;
  /** `arm64` (Graviton, the default: cheaper per GB-second) or `x86_64`; `make package` builds the matching zips. @default 'arm64' */
  readonly architecture?: 'arm64' | 'x86_64';

  // ---- Observability --------------------------------------------------------------------------
  /** @default logs.RetentionDays.TWO_WEEKS */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The aggregate IteratorAge alarm fires above this many seconds (2 of 3 minutes): a session
   * stops counting W after its last heartbeat, so a lag near W shows too few viewers. @default 10
   */
  readonly iteratorAgeAlarmSeconds?: number;
  /** The invalid-message alarm fires when MessagesInvalid (Sum, 5 min) exceeds this. @default 0 */
  readonly invalidMessagesThreshold?: number;
  /**
   * The EdgeRefusals alarm fires when the edge refuses more requests than this in 5 minutes
   * (an inflation attempt, or a player sending what it should not). @default 1000
   */
  readonly refusalsAlarmThreshold?: number;
  /** Actions of every alarm, e.g. `new SnsAction(topic)`. @default none */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
  /** @default generated by CloudFormation */
  readonly dashboardName?: string;
}

/** Ranges the Rust side enforces at start (core/src/config.rs); checked here at synth time. */
export const CONFIG_RANGES = {
  windowSeconds: [1, 3600],
  bucketSeconds: [1, 3600],
  graceSeconds: [1, 68_400],
  sessionShards: [1, 4096],
  maxConcurrentWrites: [1, 1024],
  counterTtlDays: [1, 365],
} as const;

/** The environment variable each ranged prop becomes (infra/contract.json names them). */
export const CONFIG_VARIABLES: Record<keyof typeof CONFIG_RANGES, string> = {
  windowSeconds: 'LIVECOUNT_WINDOW_SECONDS',
  bucketSeconds: 'LIVECOUNT_BUCKET_SECONDS',
  graceSeconds: 'LIVECOUNT_GRACE_SECONDS',
  sessionShards: 'LIVECOUNT_SESSION_SHARDS',
  maxConcurrentWrites: 'LIVECOUNT_MAX_CONCURRENT_WRITES',
  counterTtlDays: 'LIVECOUNT_COUNTER_TTL_DAYS',
};

/** `breakdowns`, checked at synth time by the rules the functions apply at start. */
export function checkBreakdowns(text: string): string {
  const value = '[A-Za-z0-9._-]{1,12}';
  const dimension = `(device|player|cdn|label|country)=${value}(,${value}){0,7}`;
  if (!new RegExp(`^${dimension}(;${dimension})*$`).test(text)) {
    throw new Error(
      `livecount: breakdowns is ${JSON.stringify(text)}; it is dimension=value,value;... with dimensions device, player, cdn, label, country and 1-8 values of 1-12 characters of A-Z a-z 0-9 . _ - each`,
    );
  }
  return text;
}

/** A checkov skip, written into the resource's CloudFormation Metadata. */
interface CheckovSkip {
  readonly id: string;
  readonly comment: string;
}

/** The justified checkov skips on each Lambda function. */
export const FUNCTION_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_117',
    comment:
      'No VPC: the functions only call DynamoDB and SQS public AWS endpoints over TLS with IAM auth; a VPC would add NAT or endpoint cost and cold-start time for no isolation gain.',
  },
  {
    id: 'CKV_AWS_116',
    comment:
      'A function DLQ only serves asynchronous invocations; these functions are invoked synchronously (SQS and DynamoDB Streams event source mappings, Function URL). Failures go to the events DLQ and the stream on-failure queue instead.',
  },
  {
    id: 'CKV_AWS_173',
    comment:
      'The environment holds only table names and numeric tuning values, no secrets; Lambda encrypts it at rest with an AWS managed key.',
  },
  {
    id: 'CKV_AWS_272',
    comment:
      'Code signing is not configured: the zips are built from source by `make package` in the deploying pipeline. Add an AWS Signer profile here if your organisation requires signed artifacts.',
  },
  {
    id: 'CKV_AWS_50',
    comment:
      'X-Ray tracing needs xray:PutTraceSegments on Resource "*" (X-Ray has no resource-level permissions), which this least-privilege design forbids; the handlers emit EMF metrics and structured logs instead.',
  },
];

const RESERVED_CONCURRENCY_SKIP: CheckovSkip = {
  id: 'CKV_AWS_115',
  comment:
    'Reserved concurrency is opt-in (prop reservedConcurrency): reserving takes capacity from the account pool and can fail on accounts with a low limit; ingest can be capped with ingestMaxConcurrency and aggregate is bounded by stream shards x parallelization factor.',
};

const LOG_GROUP_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_158',
    comment:
      'CloudWatch Logs encrypts log data at rest by default; the logs hold stream and session ids and error reasons, no secrets, so a customer managed KMS key (key policy, cost) is not required.',
  },
  {
    id: 'CKV_AWS_338',
    comment:
      'Operational logs only, retained 14 days by default (prop logRetention); session ids are personal-ish data, so shorter retention is deliberate. The durable numbers live in the counters table and CloudWatch metrics.',
  },
];

const TABLE_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_119',
    comment:
      'Encrypted at rest with the AWS managed key (aws/dynamodb). The data is viewer session ids and counts; a customer managed key would add key-policy management and KMS cost on every request path without a matching threat.',
  },
];

const QUEUE_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_27',
    comment:
      "Encrypted at rest with SQS managed SSE (SqsManagedSseEnabled: true); checkov's CloudFormation check only recognises KmsMasterKeyId (its Terraform twin accepts sqs_managed_sse_enabled). SQS managed keys need no KMS permissions for players and cost no KMS requests.",
  },
];

const EDGE_URL_SKIP: CheckovSkip = {
  id: 'CKV_AWS_258',
  comment:
    'The edge is the public door players (browsers, TVs) post to without AWS credentials: every request is checked (one session, a few events, a valid token by default) and refused before any write; its role can only UpdateItem the sessions table and GetItem the counters table.',
};

const BADGE_CDN_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_68',
    comment:
      'The badge serves public viewer counts, cached 1 s, from an origin only this distribution can call (origin access control); its misses are bounded by the cache, so a WAF ($5/month plus $0.60 per million requests) buys nothing here.',
  },
  {
    id: 'CKV_AWS_86',
    comment: 'Access logs of a public counter badge would cost more than the badge; CloudFront metrics cover its traffic.',
  },
  {
    id: 'CKV_AWS_174',
    comment: 'The default CloudFront certificate (*.cloudfront.net) is used; add a custom domain and certificate (TLSv1.2_2021) in your own stack if you need one.',
  },
  {
    id: 'CKV_AWS_310',
    comment: 'One origin, the read function in this region; an origin group would need a second deployment.',
  },
  {
    id: 'CKV_AWS_305',
    comment: 'The distribution serves only /api/streams/{id}/viewers; there is no root object.',
  },
  {
    id: 'CKV2_AWS_32',
    comment: 'The badge is JSON read by scripts, not a page; the read function sets its own headers (Cache-Control, ETag, CORS).',
  },
  {
    id: 'CKV2_AWS_47',
    comment: 'No WAF (see CKV_AWS_68); the origin is a Rust function, not Log4j.',
  },
];

const SHIELD_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_86',
    comment: "The shield passes every player's heartbeat: access logs would cost more than the requests; the web ACL's metrics and sampled requests show what it blocks.",
  },
  {
    id: 'CKV_AWS_174',
    comment: 'The default CloudFront certificate (*.cloudfront.net) is used; add a custom domain and certificate (TLSv1.2_2021) in your own stack if you need one.',
  },
  {
    id: 'CKV_AWS_310',
    comment: 'One origin, the edge in this region; an origin group cannot fail POSTs over.',
  },
  {
    id: 'CKV_AWS_305',
    comment: 'The distribution only passes POST /events to the edge; there is no root object.',
  },
  {
    id: 'CKV2_AWS_32',
    comment: 'The edge answers JSON to scripts, not pages, and sets its own headers (CORS, Cache-Control: no-store).',
  },
];

const SECRET_CHECKOV_SKIPS: readonly CheckovSkip[] = [
  {
    id: 'CKV_AWS_149',
    comment: 'Encrypted with the AWS managed key (aws/secretsmanager); pass tokenSecretArn (and tokenSecretKmsKeyArn) to use a secret under your own key.',
  },
  {
    id: 'CKV2_AWS_57',
    comment:
      'Rotated by put-secret-value (docs/deploy.md): the edge accepts tokens of the AWSCURRENT and AWSPREVIOUS versions, so a rotation refuses no valid token; the backend that issues tokens reads the new version itself, which a rotation Lambda could not arrange.',
  },
];

/** Adds checkov skip entries to the CloudFormation resource behind `scope`. */
export function addCheckovSkips(scope: IConstruct, skips: readonly CheckovSkip[]): void {
  const target = (scope.node.defaultChild ?? scope) as CfnResource;
  const existing = (target.cfnOptions.metadata ?? {}) as Record<string, unknown>;
  const checkov = (existing.checkov ?? {}) as { skip?: CheckovSkip[] };
  const skip = [...(checkov.skip ?? [])];
  for (const s of skips) {
    if (!skip.some((x) => x.id === s.id)) skip.push({ id: s.id, comment: s.comment });
  }
  target.cfnOptions.metadata = { ...existing, checkov: { ...checkov, skip } };
}

/** Walks up from `start` to the repository root (the folder holding Cargo.toml and infra/). */
export function findRepoRoot(start: string = __dirname): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'Cargo.toml')) && fs.existsSync(path.join(dir, 'infra'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** `<repo>/target/lambda/<name>/bootstrap.zip`, where `make package` puts it. */
export function defaultCodePath(name: FunctionName): string {
  return path.join(findRepoRoot(), 'target', 'lambda', name, 'bootstrap.zip');
}

function checkRange(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`livecount: ${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
}

function checkTableName(name: string, value: string): void {
  if (Token.isUnresolved(value)) return;
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(value)) {
    throw new Error(`livecount: ${name} must be 3-255 characters of [A-Za-z0-9_.-], got ${JSON.stringify(value)}`);
  }
}

/**
 * Everything livecount needs on AWS: the three tables, the events queue and its DLQ, the ingest,
 * aggregate, read and edge functions with one least-privilege role each, the edge's public
 * Function URL, the read Function URL and the badge's CDN, the token secret, log groups, alarms
 * and a dashboard.
 */
export class Livecount extends Construct {
  /** The raw, TTL'd session rows (stream NEW_AND_OLD_IMAGES). */
  public readonly sessions: dynamodb.Table;
  /** One live counter item per stream, read with one GetItem. */
  public readonly counters: dynamodb.Table;
  public readonly viewers: dynamodb.Table;
  /** Players send their events here. */
  public readonly queue: sqs.Queue;
  /** Events that failed `maxReceiveCount` times (invalid ones among them). */
  public readonly deadLetterQueue: sqs.Queue;
  /** Where the sessions stream mapping reports batches it gave up on. */
  public readonly aggregateFailures: sqs.Queue;
  public readonly ingestFunction: lambda.Function;
  public readonly aggregateFunction: lambda.Function;
  public readonly readFunction: lambda.Function;
  public readonly readUrl: lambda.FunctionUrl;
  /** The public edge players post to, when `publicEdge` is on. */
  public readonly edgeFunction?: lambda.Function;
  public readonly edgeFunctionUrl?: lambda.FunctionUrl;
  /** `https://…/events`, when `publicEdge` is on. */
  public readonly edgeUrl?: string;
  /** The secret sessions are signed with, when `signedSessions` is on (created unless `tokenSecretArn` is given). */
  public readonly tokenSecret?: secretsmanager.ISecret;
  /** The secret the flood shield sends the edge, when `edgeWebAclArn` is set. */
  public readonly originSecret?: secretsmanager.Secret;
  /** The flood shield in front of the edge, when `edgeWebAclArn` is set. */
  public readonly edgeShield?: cloudfront.Distribution;
  /** The badge's CDN, when `badgeCdn` is on. */
  public readonly badgeDistribution?: cloudfront.Distribution;
  /** `https://…` (the badge is `/api/streams/{id}/viewers` below it), when `badgeCdn` is on. */
  public readonly badgeUrl?: string;
  public readonly ingestMapping: lambda.EventSourceMapping;
  public readonly aggregateMapping: lambda.EventSourceMapping;
  public readonly logGroups: Record<FunctionName, logs.LogGroup>;
  public readonly roles: Record<FunctionName, iam.Role>;
  public readonly alarms: Record<string, cloudwatch.Alarm>;
  public readonly dashboard: cloudwatch.Dashboard;
  /** The environment every function gets (docs/deploy.md, "Configuration"). */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: LivecountProps = {}) {
    super(scope, id);

    const stackName = Stack.of(this).stackName;
    const sessionsTableName = props.sessionsTable ?? `${stackName}-sessions`;
    const countersTableName = props.countersTable ?? `${stackName}-counters`;
    checkTableName('sessionsTable', sessionsTableName);
    checkTableName('countersTable', countersTableName);
    if (sessionsTableName === countersTableName) {
      throw new Error('livecount: sessionsTable and countersTable must differ');
    }
    const viewersTableName = props.viewersTable ?? `${stackName}-viewers`;
    checkTableName('viewersTable', viewersTableName);
    if (viewersTableName === sessionsTableName || viewersTableName === countersTableName) {
      throw new Error('livecount: viewersTable must differ from sessionsTable and countersTable');
    }
    const config = {
      windowSeconds: props.windowSeconds ?? 15,
      bucketSeconds: props.bucketSeconds ?? 5,
      graceSeconds: props.graceSeconds ?? 60,
      sessionShards: props.sessionShards ?? 8,
      maxConcurrentWrites: props.maxConcurrentWrites ?? 16,
      counterTtlDays: props.counterTtlDays ?? 62,
    };
    for (const [name, [min, max]] of Object.entries(CONFIG_RANGES)) {
      checkRange(name, config[name as keyof typeof config], min, max);
    }
    // The live counter item holds the buckets of W + B + G: at most 20 keep it within 1 KB.
    const bucketSpan = Math.floor((config.windowSeconds + config.bucketSeconds + config.graceSeconds) / config.bucketSeconds);
    if (bucketSpan > 20) {
      throw new Error(
        `livecount: (windowSeconds + bucketSeconds + graceSeconds) / bucketSeconds is ${bucketSpan}; it may be at most 20, so the live counter item stays within 1 KB`,
      );
    }
    const maxReceiveCount = props.maxReceiveCount ?? 3;
    checkRange('maxReceiveCount', maxReceiveCount, 1, 1000);
    const ingestBatchSize = props.ingestBatchSize ?? 100;
    checkRange('ingestBatchSize', ingestBatchSize, 1, 10_000);
    const ingestWindow = props.ingestMaxBatchingWindow ?? Duration.seconds(1);
    checkRange('ingestMaxBatchingWindow (seconds)', ingestWindow.toSeconds(), 0, 300);
    if (ingestBatchSize > 10 && ingestWindow.toSeconds() < 1) {
      throw new Error('livecount: an ingestBatchSize above 10 needs an ingestMaxBatchingWindow of at least 1 second');
    }
    const aggregateBatchSize = props.aggregateBatchSize ?? 100;
    checkRange('aggregateBatchSize', aggregateBatchSize, 1, 10_000);
    const aggregateWindow = props.aggregateMaxBatchingWindow ?? Duration.seconds(1);
    checkRange('aggregateMaxBatchingWindow (seconds)', aggregateWindow.toSeconds(), 0, 300);
    const retryAttempts = props.aggregateRetryAttempts ?? 5;
    checkRange('aggregateRetryAttempts', retryAttempts, -1, 10_000);
    // The data's life: past W + B + G after its receive time, no count depends on an event.
    const dataLifeSeconds = config.windowSeconds + config.bucketSeconds + config.graceSeconds;
    const maxRecordAge = props.aggregateMaxRecordAge ?? Duration.seconds(Math.max(60, dataLifeSeconds));
    checkRange('aggregateMaxRecordAge (seconds)', maxRecordAge.toSeconds(), 60, 604_800);
    const parallelization = props.aggregateParallelizationFactor ?? 1;
    checkRange('aggregateParallelizationFactor', parallelization, 1, 10);
    const streamShards = props.expectedStreamShards ?? 4;
    checkRange('expectedStreamShards', streamShards, 1, 1000);
    const ingestMaxConcurrency = props.ingestMaxConcurrency ?? 50;
    checkRange('ingestMaxConcurrency', ingestMaxConcurrency, 2, 1000);
    checkRange('sessionsWarmWriteUnits', props.sessionsWarmWriteUnits, 4000, 10_000_000);
    checkRange('countersWarmWriteUnits', props.countersWarmWriteUnits, 4000, 10_000_000);
    const reservedConcurrency: Partial<Record<FunctionName, number>> = {
      aggregate: streamShards * parallelization,
      read: 10,
      ...props.reservedConcurrency,
    };
    const ingestTimeout = props.ingestTimeout ?? Duration.seconds(10);
    checkRange('ingestTimeout (seconds)', ingestTimeout.toSeconds(), 1, 900);
    const iteratorAgeAlarmSeconds = props.iteratorAgeAlarmSeconds ?? 10;
    checkRange('iteratorAgeAlarmSeconds', iteratorAgeAlarmSeconds, 1, 604_800);
    const invalidThreshold = props.invalidMessagesThreshold ?? 0;
    checkRange('invalidMessagesThreshold', invalidThreshold, 0, 1_000_000_000);
    const refusalsThreshold = props.refusalsAlarmThreshold ?? 1000;
    checkRange('refusalsAlarmThreshold', refusalsThreshold, 0, 1_000_000_000);
    const edgeTimeout = props.edgeTimeout ?? Duration.seconds(5);
    checkRange('edgeTimeout (seconds)', edgeTimeout.toSeconds(), 1, 900);
    const publicEdge = props.publicEdge ?? true;
    // The functions this deployment has: the edge only with publicEdge.
    const deployed = FUNCTION_NAMES.filter((name) => name !== 'edge' || publicEdge);
    const signed = props.signedSessions ?? true;
    if (props.edgeWebAclArn !== undefined && !Token.isUnresolved(props.edgeWebAclArn)) {
      if (!publicEdge) throw new Error('livecount: edgeWebAclArn shields the edge, but publicEdge is false');
      if (!/^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global\/webacl\/[^/]+\/[^/]+$/.test(props.edgeWebAclArn)) {
        throw new Error(
          `livecount: edgeWebAclArn must be the ARN of a CLOUDFRONT-scope web ACL, created in us-east-1 (arn:aws:wafv2:us-east-1:ACCOUNT:global/webacl/NAME/ID), got ${props.edgeWebAclArn}`,
        );
      }
    }
    if (!signed && props.tokenSecretArn) {
      throw new Error('livecount: signedSessions is false but tokenSecretArn is given; drop one of them');
    }

    const deploymentName = props.deploymentName ?? stackName;
    this.environment = {
      LIVECOUNT_DEPLOYMENT: deploymentName,
      LIVECOUNT_SESSIONS_TABLE: sessionsTableName,
      LIVECOUNT_COUNTERS_TABLE: countersTableName,
      LIVECOUNT_VIEWERS_TABLE: viewersTableName,
      LIVECOUNT_WINDOW_SECONDS: String(config.windowSeconds),
      LIVECOUNT_BUCKET_SECONDS: String(config.bucketSeconds),
      LIVECOUNT_GRACE_SECONDS: String(config.graceSeconds),
      LIVECOUNT_SESSION_SHARDS: String(config.sessionShards),
      LIVECOUNT_MAX_CONCURRENT_WRITES: String(config.maxConcurrentWrites),
      LIVECOUNT_COUNTER_TTL_DAYS: String(config.counterTtlDays),
      ...(props.breakdowns ? { LIVECOUNT_BREAKDOWNS: checkBreakdowns(props.breakdowns) } : {}),
      RUST_LOG: props.logLevel ?? 'info',
    };
    // Signed sessions: the secret's ARN only; the edge reads the secret itself at start, so it is
    // never in the template or the function's configuration.
    if (signed) {
      if (props.tokenSecretArn) {
        this.tokenSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'TokenSecret', props.tokenSecretArn);
      } else {
        const secret = new secretsmanager.Secret(this, 'TokenSecret', {
          description: `livecount: signs the sessions players count with (${stackName}); rotate with put-secret-value`,
          generateSecretString: { passwordLength: 48, excludePunctuation: true },
        });
        addCheckovSkips(secret, SECRET_CHECKOV_SKIPS);
        this.tokenSecret = secret;
      }
    }
    const tokenSecretArn = this.tokenSecret?.secretArn;
    // The flood shield's origin secret: the shield sends it, the edge refuses requests without it.
    if (publicEdge && props.edgeWebAclArn) {
      const secret = new secretsmanager.Secret(this, 'EdgeOriginSecret', {
        description: `livecount: the flood shield sends this to the edge (${stackName})`,
        generateSecretString: { passwordLength: 32, excludePunctuation: true },
      });
      addCheckovSkips(secret, SECRET_CHECKOV_SKIPS);
      this.originSecret = secret;
    }
    const edgeEnvironment: Record<string, string> = {
      ...this.environment,
      LIVECOUNT_CORS_ORIGINS: (props.edgeCorsOrigins ?? ['*']).join(','),
      ...(tokenSecretArn ? { LIVECOUNT_TOKEN_SECRET_ARN: tokenSecretArn } : { LIVECOUNT_UNSIGNED: 'allow' }),
      ...(this.originSecret ? { LIVECOUNT_ORIGIN_SECRET_ARN: this.originSecret.secretArn } : {}),
    };

    // ---- Tables ---------------------------------------------------------------------------
    const pitr = props.pointInTimeRecovery ?? true;
    const tableDefaults = {
      partitionKey: { name: 'PK', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'SK', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: pitr },
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      deletionProtection: props.deletionProtection ?? true,
    };
    // Warm throughput: what a table serves at once (reads at the on-demand default).
    const warm = (writeUnitsPerSecond?: number) =>
      writeUnitsPerSecond === undefined ? {} : { warmThroughput: { readUnitsPerSecond: 12_000, writeUnitsPerSecond } };
    this.sessions = new dynamodb.Table(this, 'SessionsTable', {
      ...tableDefaults,
      ...warm(props.sessionsWarmWriteUnits),
      tableName: sessionsTableName,
      timeToLiveAttribute: 'expDate',
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    this.counters = new dynamodb.Table(this, 'CountersTable', {
      ...tableDefaults,
      ...warm(props.countersWarmWriteUnits),
      tableName: countersTableName,
      // Counters of ended streams expire LIVECOUNT_COUNTER_TTL_DAYS after their last update.
      timeToLiveAttribute: 'expiresAt',
    });
    this.viewers = new dynamodb.Table(this, 'ViewersTable', {
      ...tableDefaults,
      tableName: viewersTableName,
      // A viewer's marker expires LIVECOUNT_COUNTER_TTL_DAYS after their last session start.
      timeToLiveAttribute: 'expiresAt',
    });
    for (const table of [this.sessions, this.counters, this.viewers]) {
      addCheckovSkips(table, TABLE_CHECKOV_SKIPS);
      if (!pitr) {
        addCheckovSkips(table, [
          {
            id: 'CKV_AWS_28',
            comment: 'pointInTimeRecovery was turned off explicitly for this deployment.',
          },
        ]);
      }
    }

    // ---- Queues ---------------------------------------------------------------------------
    const ingestVisibility = Duration.seconds(ingestTimeout.toSeconds() * 6 + ingestWindow.toSeconds());
    this.deadLetterQueue = new sqs.Queue(this, 'EventsDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    // Retention fitted to the data's life: an event older than W + G is dropped by ingest, so
    // keeping it longer only delays nothing; the retries (maxReceiveCount x visibility) fit inside.
    const queueRetention = Math.max(60, 2 * dataLifeSeconds, maxReceiveCount * ingestVisibility.toSeconds());
    this.queue = new sqs.Queue(this, 'EventsQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: ingestVisibility,
      retentionPeriod: Duration.seconds(queueRetention),
      // The handlers accept bodies up to 256 KiB; SQS refuses larger ones at send time.
      maxMessageSizeBytes: 262_144,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });
    this.aggregateFailures = new sqs.Queue(this, 'AggregateFailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    for (const queue of [this.queue, this.deadLetterQueue, this.aggregateFailures]) {
      addCheckovSkips(queue, QUEUE_CHECKOV_SKIPS);
    }

    // ---- Functions ------------------------------------------------------------------------
    const retention = props.logRetention ?? logs.RetentionDays.TWO_WEEKS;
    const logGroups = {} as Record<FunctionName, logs.LogGroup>;
    for (const name of deployed) {
      logGroups[name] = new logs.LogGroup(this, `${capitalize(name)}Logs`, {
        retention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      addCheckovSkips(logGroups[name], LOG_GROUP_CHECKOV_SKIPS);
    }
    this.logGroups = logGroups;

    const stack = Stack.of(this);
    const logStatement = (name: FunctionName) =>
      new iam.PolicyStatement({
        sid: 'OwnLogGroup',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroups[name].logGroupArn],
      });
    const streamArn = this.sessions.tableStreamArn;
    if (!streamArn) throw new Error('livecount: the sessions table has no stream');
    const statements: Record<FunctionName, iam.PolicyStatement[]> = {
      ingest: [
        logStatement('ingest'),
        new iam.PolicyStatement({
          sid: 'WriteSessions',
          actions: ['dynamodb:UpdateItem'],
          resources: [this.sessions.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ConsumeEvents',
          // What the SQS event source mapping needs (as AWSLambdaSQSQueueExecutionRole).
          actions: ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
          resources: [this.queue.queueArn],
        }),
        new iam.PolicyStatement({
          sid: 'DeadLetterInvalidEvents',
          actions: ['sqs:SendMessage'],
          resources: [this.deadLetterQueue.queueArn],
        }),
      ],
      edge: !publicEdge
        ? []
        : [
        logStatement('edge'),
        new iam.PolicyStatement({
          sid: 'WriteSessions',
          actions: ['dynamodb:UpdateItem'],
          resources: [this.sessions.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReadCounts',
          actions: ['dynamodb:GetItem'],
          resources: [this.counters.tableArn],
        }),
        ...(tokenSecretArn
          ? [
              new iam.PolicyStatement({
                sid: 'ReadTokenSecret',
                actions: ['secretsmanager:GetSecretValue'],
                resources: [tokenSecretArn],
              }),
            ]
          : []),
        ...(this.originSecret
          ? [
              new iam.PolicyStatement({
                sid: 'ReadOriginSecret',
                actions: ['secretsmanager:GetSecretValue'],
                resources: [this.originSecret.secretArn],
              }),
            ]
          : []),
        ...(tokenSecretArn && props.tokenSecretKmsKeyArn
          ? [
              new iam.PolicyStatement({
                sid: 'DecryptTokenSecret',
                actions: ['kms:Decrypt'],
                resources: [props.tokenSecretKmsKeyArn],
                conditions: { StringLike: { 'kms:ViaService': 'secretsmanager.*.amazonaws.com' } },
              }),
            ]
          : []),
      ],
      aggregate: [
        logStatement('aggregate'),
        new iam.PolicyStatement({
          sid: 'WriteCounters',
          actions: ['dynamodb:UpdateItem'],
          resources: [this.counters.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'MarkViewers',
          actions: ['dynamodb:UpdateItem'],
          resources: [this.viewers.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReadSessionsStream',
          actions: [
            'dynamodb:DescribeStream',
            'dynamodb:GetRecords',
            'dynamodb:GetShardIterator',
            'dynamodb:ListStreams',
          ],
          resources: [streamArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReportFailedBatches',
          actions: ['sqs:SendMessage'],
          resources: [this.aggregateFailures.queueArn],
        }),
      ],
      read: [
        logStatement('read'),
        new iam.PolicyStatement({
          sid: 'ReadCounters',
          actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'],
          resources: [this.counters.tableArn],
        }),
      ],
    };

    const timeouts: Record<FunctionName, Duration> = {
      ingest: ingestTimeout,
      aggregate: props.aggregateTimeout ?? Duration.seconds(60),
      read: props.readTimeout ?? Duration.seconds(10),
      edge: edgeTimeout,
    };
    const codePaths: Record<FunctionName, string> = {
      ingest: props.ingestCode ?? defaultCodePath('ingest'),
      aggregate: props.aggregateCode ?? defaultCodePath('aggregate'),
      read: props.readCode ?? defaultCodePath('read'),
      edge: props.edgeCode ?? defaultCodePath('edge'),
    };
    const environments: Record<FunctionName, Record<string, string>> = {
      ingest: { ...this.environment, LIVECOUNT_DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl },
      aggregate: this.environment,
      read: this.environment,
      edge: edgeEnvironment,
    };
    const roles = {} as Record<FunctionName, iam.Role>;
    const functions = {} as Record<FunctionName, lambda.Function>;
    for (const name of deployed) {
      const codePath = path.resolve(codePaths[name]);
      if (!fs.existsSync(codePath)) {
        throw new Error(
          `livecount: the ${name} function's code is missing at ${codePath}: run \`make package\`, or pass ${name}Code (a zip, or a directory holding \`bootstrap\`)`,
        );
      }
      roles[name] = new iam.Role(this, `${capitalize(name)}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `livecount ${name} function (${stack.stackName})`,
        inlinePolicies: { livecount: new iam.PolicyDocument({ statements: statements[name] }) },
      });
      const reserved = reservedConcurrency[name];
      functions[name] = new lambda.Function(this, `${capitalize(name)}Function`, {
        description: `livecount ${name}`,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: (props.architecture ?? 'arm64') === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(codePath),
        memorySize: props.memorySize ?? 256,
        timeout: timeouts[name],
        role: roles[name],
        logGroup: logGroups[name],
        environment: environments[name],
        reservedConcurrentExecutions: reserved,
        // The edge is invoked once per heartbeat: Lambda's START/END/REPORT lines would cost more
        // in CloudWatch Logs than the invocation (WARN drops them; the EMF lines stay).
        ...(name === 'edge'
          ? {
              loggingFormat: lambda.LoggingFormat.JSON,
              systemLogLevelV2: lambda.SystemLogLevel.WARN,
              applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
            }
          : {}),
      });
      addCheckovSkips(functions[name], FUNCTION_CHECKOV_SKIPS);
      if (reserved === undefined) addCheckovSkips(functions[name], [RESERVED_CONCURRENCY_SKIP]);
    }
    this.roles = roles;
    this.ingestFunction = functions.ingest;
    this.aggregateFunction = functions.aggregate;
    this.readFunction = functions.read;
    this.edgeFunction = functions.edge;

    // ---- Triggers ---------------------------------------------------------------------------
    // Plain EventSourceMappings (not the aws-lambda-event-sources helpers): those add their own
    // grants, among them dynamodb:ListStreams on "*"; the roles above already hold exactly what
    // the mappings need.
    this.ingestMapping = new lambda.EventSourceMapping(this, 'IngestFromQueue', {
      target: this.ingestFunction,
      eventSourceArn: this.queue.queueArn,
      batchSize: ingestBatchSize,
      maxBatchingWindow: ingestWindow,
      reportBatchItemFailures: true,
      maxConcurrency: ingestMaxConcurrency,
    });
    const failures = this.aggregateFailures;
    this.aggregateMapping = new lambda.EventSourceMapping(this, 'AggregateFromSessionsStream', {
      target: this.aggregateFunction,
      eventSourceArn: streamArn,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: aggregateBatchSize,
      maxBatchingWindow: aggregateWindow,
      // No bisecting: the function reports failures instead of failing, naming the batch's first
      // record, so every retry starts where the receipts are named (docs/design.md §4). A
      // bisected second half would start at a record no receipt is named after.
      bisectBatchOnError: false,
      reportBatchItemFailures: true,
      retryAttempts,
      maxRecordAge,
      parallelizationFactor: parallelization,
      // Not SqsDlq: its bind() grants sqs:GetQueueAttributes and sqs:GetQueueUrl as well.
      onFailure: { bind: () => ({ destination: failures.queueArn }) },
    });

    // ---- The public edge -----------------------------------------------------------------------
    if (functions.edge) {
      this.edgeFunctionUrl = functions.edge.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
      addCheckovSkips(this.edgeFunctionUrl, [EDGE_URL_SKIP]);
      this.edgeUrl = `${this.edgeFunctionUrl.url}events`;
      if (this.originSecret && props.edgeWebAclArn) {
        // The flood shield: CloudFront with the deployer's web ACL in front of the edge, passing
        // every request through (nothing cached) with the origin secret, which the edge checks.
        // It forwards the headers the edge reads and adds the viewer's country, which the edge
        // trusts only from the shield (docs/design.md, "Breakdowns"); not Host, which the
        // Function URL answers only with its own.
        const edgeRequests = new cloudfront.OriginRequestPolicy(this, 'EdgeShieldRequests', {
          comment: 'livecount edge: what the edge reads, and the viewer country',
          headerBehavior: cloudfront.OriginRequestHeaderBehavior.allowList(...EDGE_SHIELD_HEADERS),
          cookieBehavior: cloudfront.OriginRequestCookieBehavior.none(),
          queryStringBehavior: cloudfront.OriginRequestQueryStringBehavior.none(),
        });
        this.edgeShield = new cloudfront.Distribution(this, 'EdgeShield', {
          comment: `livecount edge shield (${stackName}): POST /events through AWS WAF`,
          defaultBehavior: {
            origin: new origins.FunctionUrlOrigin(this.edgeFunctionUrl, {
              customHeaders: { [ORIGIN_HEADER]: this.originSecret.secretValue.unsafeUnwrap() },
            }),
            viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
            cachedMethods: cloudfront.CachedMethods.CACHE_GET_HEAD,
            cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
            originRequestPolicy: edgeRequests,
          },
          webAclId: props.edgeWebAclArn,
          priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
          httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
          enableIpv6: true,
        });
        addCheckovSkips(this.edgeShield, SHIELD_CHECKOV_SKIPS);
        this.edgeUrl = `https://${this.edgeShield.distributionDomainName}/events`;
      }
    }

    // ---- Read API and the badge's CDN ------------------------------------------------------------
    const readOrigins = props.allowedOrigins ?? [];
    this.readUrl = this.readFunction.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.AWS_IAM,
      cors:
        readOrigins.length > 0
          ? {
              allowedOrigins: readOrigins,
              allowedMethods: [lambda.HttpMethod.GET],
              maxAge: Duration.hours(1),
            }
          : undefined,
    });
    if (props.badgeCdn ?? true) {
      // The CDN signs each request it forwards (origin access control) and marks it public: the
      // read function then serves it the badge and nothing else. The answer says how long to keep
      // it (Cache-Control: public, max-age=1); the policy bounds that, and keys on the path alone.
      const cachePolicy = new cloudfront.CachePolicy(this, 'BadgeCachePolicy', {
        comment: 'livecount badge: the origin says how long (max-age=1); the path is the key',
        minTtl: Duration.seconds(0),
        defaultTtl: Duration.seconds(1),
        maxTtl: Duration.seconds(10),
        headerBehavior: cloudfront.CacheHeaderBehavior.none(),
        cookieBehavior: cloudfront.CacheCookieBehavior.none(),
        queryStringBehavior: cloudfront.CacheQueryStringBehavior.none(),
        enableAcceptEncodingBrotli: true,
        enableAcceptEncodingGzip: true,
      });
      this.badgeDistribution = new cloudfront.Distribution(this, 'BadgeDistribution', {
        comment: `livecount badge (${stackName}): GET /api/streams/{id}/viewers`,
        defaultBehavior: {
          origin: origins.FunctionUrlOrigin.withOriginAccessControl(this.readUrl, {
            customHeaders: { [PUBLIC_HEADER]: '1' },
          }),
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
          cachedMethods: cloudfront.CachedMethods.CACHE_GET_HEAD,
          cachePolicy,
          compress: true,
        },
        priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
        httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
        enableIpv6: true,
      });
      addCheckovSkips(this.badgeDistribution, BADGE_CDN_CHECKOV_SKIPS);
      this.badgeUrl = `https://${this.badgeDistribution.distributionDomainName}`;
    }

    // ---- Alarms -----------------------------------------------------------------------------
    const alarms: Record<string, cloudwatch.Alarm> = {};
    const alarm = (key: string, alarmProps: cloudwatch.AlarmProps) => {
      const a = new cloudwatch.Alarm(this, `${key}Alarm`, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...alarmProps,
      });
      for (const action of props.alarmActions ?? []) a.addAlarmAction(action);
      alarms[key] = a;
    };
    const fiveMinutes = Duration.minutes(5);
    const oneMinute = Duration.minutes(1);
    const metric = (m: string, period: Duration = oneMinute) => handlerMetric(deploymentName, m.split('/')[0] as MetricFunction, m.split('/')[1], period);
    // A message that waits longer than W / 2 leaves too little of its window: viewers drop out.
    alarm('EventsQueueAge', {
      alarmDescription: `livecount: events wait more than ${config.windowSeconds / 2} s (W / 2) in the queue; viewers start dropping out of the count (docs/operations.md)`,
      metric: this.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: oneMinute }),
      threshold: config.windowSeconds / 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
    });
    alarm('AggregateIteratorAge', {
      alarmDescription: `livecount: the aggregator lags the sessions stream by more than ${iteratorAgeAlarmSeconds} s; counts fall behind (docs/operations.md)`,
      metric: this.aggregateFunction.metric('IteratorAge', { statistic: 'Maximum', period: oneMinute }),
      threshold: iteratorAgeAlarmSeconds * 1000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
    });
    // Events accepted but no aggregate invocation: a stalled trigger emits no IteratorAge at all,
    // so silence is what this alarm looks for (missing data counts as zero invocations).
    alarm('PipelineStalled', {
      alarmDescription:
        'livecount: events were applied to sessions but the aggregator was not invoked for 3 minutes; counts are frozen (docs/operations.md)',
      // Events applied by either path: the edge (players) and ingest (relays).
      metric: new cloudwatch.MathExpression({
        expression: publicEdge
          ? 'IF(FILL(applied, 0) + FILL(edgeApplied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)'
          : 'IF(FILL(applied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)',
        usingMetrics: {
          applied: metric('ingest/EventsApplied'),
          ...(publicEdge ? { edgeApplied: metric('edge/EventsApplied') } : {}),
          invocations: this.aggregateFunction.metricInvocations({ statistic: 'Sum', period: oneMinute }),
        },
        period: oneMinute,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    for (const [key, table, name] of [
      ['SessionsTableThrottled', this.sessions, 'sessions'],
      ['CountersTableThrottled', this.counters, 'counters'],
      ['ViewersTableThrottled', this.viewers, 'viewers'],
    ] as const) {
      alarm(key, {
        alarmDescription: `livecount: DynamoDB throttled requests on the ${name} table (docs/operations.md)`,
        metric: new cloudwatch.MathExpression({
          expression: 'FILL(reads, 0) + FILL(writes, 0)',
          usingMetrics: {
            reads: table.metric('ReadThrottleEvents', { statistic: 'Sum', period: oneMinute }),
            writes: table.metric('WriteThrottleEvents', { statistic: 'Sum', period: oneMinute }),
          },
          period: oneMinute,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    // Arrivals, not depth: an alarm on depth would stay red for the queue's 14-day retention.
    for (const [key, queue, what] of [
      ['DeadLetterArrivals', this.deadLetterQueue, 'events reached the dead-letter queue (invalid, with their reasons, or failing maxReceiveCount times)'],
      ['AggregateFailureArrivals', this.aggregateFailures, 'the aggregate mapping gave up on sessions stream records'],
    ] as const) {
      alarm(key, {
        alarmDescription: `livecount: ${what} (docs/operations.md)`,
        metric: new cloudwatch.MathExpression({
          expression: 'MAX([FILL(sent, 0), FILL(DIFF(visible), 0)])',
          usingMetrics: {
            sent: queue.metricNumberOfMessagesSent({ statistic: 'Sum', period: oneMinute }),
            visible: queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: oneMinute }),
          },
          period: oneMinute,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    for (const name of deployed) {
      const fn = functions[name];
      alarm(`${capitalize(name)}Errors`, {
        alarmDescription: `livecount: the ${name} function returned errors`,
        metric: fn.metricErrors({ statistic: 'Sum', period: fiveMinutes }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm(`${capitalize(name)}Throttles`, {
        alarmDescription: `livecount: the ${name} function was throttled`,
        metric: fn.metricThrottles({ statistic: 'Sum', period: fiveMinutes }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    alarm('MessagesInvalid', {
      alarmDescription: `livecount: more than ${invalidThreshold} invalid player messages in 5 minutes (see the ingest logs for each reason)`,
      metric: metric('ingest/MessagesInvalid', fiveMinutes),
      threshold: invalidThreshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    alarm('UnreadableRecords', {
      alarmDescription: 'livecount: the aggregator skipped sessions stream records it could not understand',
      metric: metric('aggregate/UnreadableRecords', fiveMinutes),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    alarm('RecordsNotApplied', {
      alarmDescription:
        'livecount: DynamoDB rejected a counter update as invalid; its records were not applied (see the aggregate logs)',
      metric: metric('aggregate/RecordsNotApplied', fiveMinutes),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    alarm('SecondsMissed', {
      alarmDescription:
        "livecount: seconds of a stream's figures could not be counted (its figures' publications failed for more than 10 s while its counter went on; see the aggregate logs)",
      metric: metric('aggregate/SecondsMissed', fiveMinutes),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    if (functions.edge) {
      const refused = Object.fromEntries(REFUSAL_METRICS.map((m, i) => [`r${i}`, metric(`edge/${m}`, fiveMinutes)]));
      alarm('EdgeRefusals', {
        alarmDescription: `livecount: the edge refused more than ${refusalsThreshold} requests in 5 minutes: an inflation attempt or a player sending what it should not (docs/operations.md)`,
        metric: new cloudwatch.MathExpression({
          expression: REFUSAL_METRICS.map((_, i) => `FILL(r${i}, 0)`).join(' + '),
          usingMetrics: refused,
          period: fiveMinutes,
        }),
        threshold: refusalsThreshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm('EdgeWritesFailed', {
        alarmDescription: 'livecount: the edge could not write players\' events (503 to the player, which retries; see the edge logs)',
        metric: metric('edge/WritesFailed', fiveMinutes),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    this.alarms = alarms;

    // ---- Dashboard --------------------------------------------------------------------------
    const minute = Duration.minutes(1);
    const perFunction = (f: (fn: lambda.Function, name: FunctionName) => cloudwatch.IMetric) =>
      deployed.map((name) => f(functions[name], name));
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          '# livecount\nViewer counts are not a metric: read them with one GetItem on the counters table (or the read API, or the badge). ' +
          'These graphs show the pipeline that keeps them exact.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Edge: counted and refused per minute',
        left: ['EventsApplied', 'EventsStale'].map((m) => handlerMetric(deploymentName, 'edge', m, minute)),
        right: REFUSAL_METRICS.map((m) => handlerMetric(deploymentName, 'edge', m, minute)),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Ingest (relays): events per minute',
        left: INGEST_METRICS.map((m) => handlerMetric(deploymentName, 'ingest', m, minute)),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Aggregate: records and updates per minute',
        left: AGGREGATE_METRICS.map((m) => handlerMetric(deploymentName, 'aggregate', m, minute)),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Aggregate iterator age (ms, max)',
        left: [this.aggregateFunction.metric('IteratorAge', { statistic: 'Maximum', period: minute })],
        leftAnnotations: [{ value: iteratorAgeAlarmSeconds * 1000, label: 'alarm' }],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Errors and throttles',
        left: perFunction((fn, name) => fn.metricErrors({ period: minute, label: `${name} errors` })),
        right: perFunction((fn, name) => fn.metricThrottles({ period: minute, label: `${name} throttles` })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead letters and failed stream batches',
        left: [
          this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: minute, label: 'events DLQ' }),
          this.aggregateFailures.metricApproximateNumberOfMessagesVisible({
            period: minute,
            label: 'aggregate on-failure queue',
          }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Events queue',
        left: [
          this.queue.metricNumberOfMessagesSent({ period: minute, label: 'sent' }),
          this.queue.metricApproximateNumberOfMessagesVisible({ period: minute, label: 'backlog' }),
        ],
        right: [this.queue.metricApproximateAgeOfOldestMessage({ period: minute, label: 'oldest (s)' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Duration p99 (ms)',
        left: perFunction((fn, name) => fn.metricDuration({ statistic: 'p99', period: minute, label: name })),
        width: 12,
      }),
    );
  }

  /** Lets `grantee` (a player-facing API, a producer) send events to the queue: sqs:SendMessage only. */
  public grantSendEvents(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grant(grantee, 'sqs:SendMessage');
  }

  /** Lets `grantee` read live counts directly: dynamodb:GetItem on the counters table only. */
  public grantReadCounts(grantee: iam.IGrantable): iam.Grant {
    return this.counters.grant(grantee, 'dynamodb:GetItem');
  }

  /** Lets `grantee` call the read API's Function URL (when it uses AWS_IAM auth). */
  public grantInvokeReadUrl(grantee: iam.IGrantable): iam.Grant {
    return this.readUrl.grantInvokeUrl(grantee);
  }
}

/** The functions that emit their own metrics. */
export type MetricFunction = 'ingest' | 'aggregate' | 'edge';

/** One of the handlers' EMF metrics: namespace `livecount`, dimension `Function`. */
export function handlerMetric(
  deployment: string,
  fn: MetricFunction,
  metricName: string,
  period: Duration,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { Deployment: deployment, Function: fn },
    statistic: 'Sum',
    period,
  });
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
