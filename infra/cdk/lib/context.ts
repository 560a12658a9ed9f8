// Turns `cdk -c key=value` context into LivecountProps, so the app can be configured without code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { FUNCTION_NAMES, FunctionName, LivecountProps } from './livecount';

/** Context keys the app reads, each with what it sets. */
export const CONTEXT_KEYS = {
  stackName: 'the stack name (default Livecount)',
  codeDir: 'a folder holding <name>/bootstrap.zip or <name>/bootstrap for ingest, aggregate, read, edge',
  ingestCode: 'the ingest zip or folder', aggregateCode: 'the aggregate zip or folder', readCode: 'the read zip or folder',
  edgeCode: 'the edge zip or folder',
  sessionsTable: 'LIVECOUNT_SESSIONS_TABLE', countersTable: 'LIVECOUNT_COUNTERS_TABLE',
  viewersTable: 'LIVECOUNT_VIEWERS_TABLE',
  windowSeconds: 'LIVECOUNT_WINDOW_SECONDS', bucketSeconds: 'LIVECOUNT_BUCKET_SECONDS',
  graceSeconds: 'LIVECOUNT_GRACE_SECONDS', sessionShards: 'LIVECOUNT_SESSION_SHARDS',
  maxConcurrentWrites: 'LIVECOUNT_MAX_CONCURRENT_WRITES', logLevel: 'RUST_LOG',
  pointInTimeRecovery: 'true/false', destroyTables: 'true: delete the tables with the stack',
  maxReceiveCount: 'receives before the DLQ', ingestBatchSize: '',
  sessionsWarmWriteUnits: 'write units per second', countersWarmWriteUnits: 'write units per second', ingestMaxBatchingWindowSeconds: '',
  ingestMaxConcurrency: '', ingestTimeoutSeconds: '', aggregateBatchSize: '',
  aggregateMaxBatchingWindowSeconds: '', aggregateRetryAttempts: '', aggregateMaxRecordAgeSeconds: '',
  aggregateParallelizationFactor: '', aggregateTimeoutSeconds: '', readTimeoutSeconds: '',
  allowedOrigins: 'comma-separated CORS origins of the read URL',
  memorySize: 'MB', logRetentionDays: 'a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, ...)',
  iteratorAgeAlarmSeconds: '', invalidMessagesThreshold: '', alarmTopicArn: 'SNS topic for every alarm',
  dashboardName: '',
  ingestReservedConcurrency: '', aggregateReservedConcurrency: '', readReservedConcurrency: '', edgeReservedConcurrency: '',
  publicEdge: 'false: no public edge for players', edgeCorsOrigins: 'comma-separated CORS origins of POST /events',
  edgeTimeoutSeconds: '', signedSessions: 'false: count unsigned sessions (anyone can add viewers)',
  tokenSecretArn: 'Secrets Manager secret signing sessions (default: the stack creates one)',
  tokenSecretKmsKeyArn: 'customer-managed KMS key of that secret', badgeCdn: 'false: no CloudFront for the badge',
  refusalsAlarmThreshold: 'refused requests in 5 minutes',
  edgeWebAclArn: 'a CLOUDFRONT-scope WAF web ACL (us-east-1): the flood shield in front of the edge',
} as const;

export type ContextKey = keyof typeof CONTEXT_KEYS;

/** Reads the construct's props from context through `get` (node.tryGetContext); `scope` is the stack. */
export function propsFromContext(scope: Construct, get: (key: string) => unknown): LivecountProps {
  const str = (key: ContextKey): string | undefined => {
    const v = get(key);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const num = (key: ContextKey): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`livecount: context ${key}=${JSON.stringify(v)} is not a number`);
    return n;
  };
  const bool = (key: ContextKey): boolean | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw new Error(`livecount: context ${key}=${JSON.stringify(v)} must be true or false`);
  };
  const seconds = (key: ContextKey): Duration | undefined => {
    const n = num(key);
    return n === undefined ? undefined : Duration.seconds(n);
  };

  const codeDir = str('codeDir');
  const code = (name: FunctionName): string | undefined => {
    const explicit = str(`${name}Code` as ContextKey);
    if (explicit) return explicit;
    if (!codeDir) return undefined;
    const zip = path.join(codeDir, name, 'bootstrap.zip');
    return fs.existsSync(zip) ? zip : path.join(codeDir, name);
  };
  const retentionDays = num('logRetentionDays');
  if (retentionDays !== undefined && !Object.values(logs.RetentionDays).includes(retentionDays)) {
    throw new Error(`livecount: context logRetentionDays=${retentionDays} is not a CloudWatch Logs retention`);
  }
  const topicArn = str('alarmTopicArn');
  const origins = str('allowedOrigins');
  const list = (v: string | undefined) => (v ? v.split(',').map((o) => o.trim()).filter((o) => o !== '') : undefined);
  const reserved: Partial<Record<FunctionName, number>> = {};
  for (const name of FUNCTION_NAMES) {
    const v = num(`${name}ReservedConcurrency` as ContextKey);
    if (v !== undefined) reserved[name] = v;
  }

  return {
    ingestCode: code('ingest'),
    aggregateCode: code('aggregate'),
    readCode: code('read'),
    edgeCode: code('edge'),
    sessionsTable: str('sessionsTable'),
    countersTable: str('countersTable'),
    viewersTable: str('viewersTable'),
    windowSeconds: num('windowSeconds'),
    bucketSeconds: num('bucketSeconds'),
    graceSeconds: num('graceSeconds'),
    sessionShards: num('sessionShards'),
    maxConcurrentWrites: num('maxConcurrentWrites'),
    logLevel: str('logLevel'),
    pointInTimeRecovery: bool('pointInTimeRecovery'),
    removalPolicy: bool('destroyTables') ? RemovalPolicy.DESTROY : undefined,
    maxReceiveCount: num('maxReceiveCount'),
    ingestBatchSize: num('ingestBatchSize'),
    sessionsWarmWriteUnits: num('sessionsWarmWriteUnits'),
    countersWarmWriteUnits: num('countersWarmWriteUnits'),
    ingestMaxBatchingWindow: seconds('ingestMaxBatchingWindowSeconds'),
    ingestMaxConcurrency: num('ingestMaxConcurrency'),
    ingestTimeout: seconds('ingestTimeoutSeconds'),
    aggregateBatchSize: num('aggregateBatchSize'),
    aggregateMaxBatchingWindow: seconds('aggregateMaxBatchingWindowSeconds'),
    aggregateRetryAttempts: num('aggregateRetryAttempts'),
    aggregateMaxRecordAge: seconds('aggregateMaxRecordAgeSeconds'),
    aggregateParallelizationFactor: num('aggregateParallelizationFactor'),
    aggregateTimeout: seconds('aggregateTimeoutSeconds'),
    readTimeout: seconds('readTimeoutSeconds'),
    allowedOrigins: list(origins),
    publicEdge: bool('publicEdge'),
    edgeCorsOrigins: list(str('edgeCorsOrigins')),
    edgeTimeout: seconds('edgeTimeoutSeconds'),
    signedSessions: bool('signedSessions'),
    badgeCdn: bool('badgeCdn'),
    refusalsAlarmThreshold: num('refusalsAlarmThreshold'),
    edgeWebAclArn: str('edgeWebAclArn'),
    tokenSecretArn: str('tokenSecretArn'),
    tokenSecretKmsKeyArn: str('tokenSecretKmsKeyArn'),
    memorySize: num('memorySize'),
    reservedConcurrency: Object.keys(reserved).length > 0 ? reserved : undefined,
    logRetention: retentionDays as logs.RetentionDays | undefined,
    iteratorAgeAlarmSeconds: num('iteratorAgeAlarmSeconds'),
    invalidMessagesThreshold: num('invalidMessagesThreshold'),
    alarmActions: topicArn ? [new SnsAction(sns.Topic.fromTopicArn(scope, 'AlarmTopic', topicArn))] : undefined,
    dashboardName: str('dashboardName'),
  };
}
