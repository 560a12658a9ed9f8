// Tests of the Livecount construct and app: every resource setting the system relies on, not just
// that it synthesizes. Run with `npm test` (tsc, then node --test on dist/test).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App, CfnElement, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { propsFromContext } from '../lib/context';
import {
  AGGREGATE_METRICS,
  CONFIG_RANGES,
  EDGE_METRICS,
  REFUSAL_METRICS,
  CONFIG_VARIABLES,
  FUNCTION_NAMES,
  FunctionName,
  INGEST_METRICS,
  Livecount,
  LivecountProps,
  defaultCodePath,
  findRepoRoot,
} from '../lib/livecount';

const CDK_DIR = path.resolve(__dirname, '..', '..');
const CDK_JSON = JSON.parse(fs.readFileSync(path.join(CDK_DIR, 'cdk.json'), 'utf8'));
/** The context `cdk synth` gives the app: cdk.json's feature flags, and asset metadata on. */
const CONTEXT = { ...CDK_JSON.context, 'aws:cdk:enable-asset-metadata': true };

/** Temporary folders, removed when the tests end. */
const TEMP: string[] = [];
process.on('exit', () => TEMP.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  TEMP.push(dir);
  return dir;
}

/** A folder with ingest/, aggregate/, read/, edge/, each holding a dummy `bootstrap`. */
function dummyCode(): string {
  const dir = tempDir('livecount-code-');
  for (const name of FUNCTION_NAMES) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'bootstrap'), '#!/bin/sh\necho dummy\n', { mode: 0o755 });
  }
  return dir;
}
const CODE = dummyCode();
const codeProps = {
  ingestCode: path.join(CODE, 'ingest'),
  aggregateCode: path.join(CODE, 'aggregate'),
  readCode: path.join(CODE, 'read'),
  edgeCode: path.join(CODE, 'edge'),
};

interface Synth {
  stack: Stack;
  construct: Livecount;
  template: Template;
  json: any;
  id: (c: { node: { defaultChild?: unknown } }) => string;
}

/** A stack holding one Livecount, not synthesized yet (more constructs may be added). */
function build(props: LivecountProps = {}): { stack: Stack; construct: Livecount } {
  const app = new App({ context: CONTEXT });
  const stack = new Stack(app, 'Test');
  const construct = new Livecount(stack, 'Livecount', { ...codeProps, ...props });
  return { stack, construct };
}

/** Synthesizes one stack with the app's feature flags (cdk.json context), as `cdk synth` would. */
function synth(props: LivecountProps = {}): Synth {
  const { stack, construct } = build(props);
  const template = Template.fromStack(stack);
  return {
    stack,
    construct,
    template,
    json: template.toJSON(),
    id: (c) => stack.getLogicalId(c.node.defaultChild as CfnElement),
  };
}

const DEFAULT = synth();
/** The construct's function called `name`. */
const fnOf = (c: Livecount, name: (typeof FUNCTION_NAMES)[number]): lambda.Function => {
  const fn = { ingest: c.ingestFunction, aggregate: c.aggregateFunction, read: c.readFunction, edge: c.edgeFunction }[name];
  assert.ok(fn, `no ${name} function`);
  return fn;
};
const getAtt = (logicalId: string, attr: string) => ({ 'Fn::GetAtt': [logicalId, attr] });
const ref = (logicalId: string) => ({ Ref: logicalId });
const resource = (s: Synth, logicalId: string) => {
  const r = s.json.Resources[logicalId];
  assert.ok(r, `no resource ${logicalId}`);
  return r;
};
const resourcesOfType = (s: Synth, type: string): [string, any][] =>
  Object.entries(s.json.Resources as Record<string, any>).filter(([, r]) => r.Type === type);

/** infra/contract.json: what the Rust functions and the infrastructure agree on. */
const CONTRACT = JSON.parse(fs.readFileSync(path.resolve(CDK_DIR, '..', 'contract.json'), 'utf8'));

const ENV_DEFAULTS = {
  LIVECOUNT_DEPLOYMENT: 'Test',
  LIVECOUNT_SESSIONS_TABLE: 'Test-sessions',
  LIVECOUNT_COUNTERS_TABLE: 'Test-counters',
  LIVECOUNT_VIEWERS_TABLE: 'Test-viewers',
  LIVECOUNT_WINDOW_SECONDS: '15',
  LIVECOUNT_BUCKET_SECONDS: '5',
  LIVECOUNT_GRACE_SECONDS: '60',
  LIVECOUNT_SESSION_SHARDS: '8',
  LIVECOUNT_MAX_CONCURRENT_WRITES: '16',
  LIVECOUNT_COUNTER_TTL_DAYS: '62',
  RUST_LOG: 'info',
};

describe('tables', () => {
  const { construct: c } = DEFAULT;
  // Every table's keys: string PK and SK.
  const PK_SK_KEYS = {
    AttributeDefinitions: [
      { AttributeName: 'PK', AttributeType: 'S' },
      { AttributeName: 'SK', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'PK', KeyType: 'HASH' },
      { AttributeName: 'SK', KeyType: 'RANGE' },
    ],
  };

  it('sessions: PK/SK strings, on demand, TTL on expDate, NEW_AND_OLD_IMAGES stream, PITR, SSE', () => {
    const t = resource(DEFAULT, DEFAULT.id(c.sessions));
    assert.equal(t.Type, 'AWS::DynamoDB::Table');
    assert.deepEqual(t.Properties, {
      TableName: 'Test-sessions',
      ...PK_SK_KEYS,
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expDate', Enabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
    });
    assert.equal(t.DeletionPolicy, 'Retain');
  });

  it('counters and viewers: PK/SK strings, on demand, TTL on expiresAt, no stream, PITR, SSE, deletion protection', () => {
    for (const [table, name] of [
      [c.counters, 'Test-counters'],
      [c.viewers, 'Test-viewers'],
    ] as const) {
      const t = resource(DEFAULT, DEFAULT.id(table));
      assert.deepEqual(t.Properties, {
        TableName: name,
        ...PK_SK_KEYS,
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      });
    }
  });

  it('deletion protection can be turned off', () => {
    const s = synth({ deletionProtection: false });
    for (const table of [s.construct.sessions, s.construct.counters, s.construct.viewers]) {
      assert.equal(resource(s, s.id(table)).Properties.DeletionProtectionEnabled, false);
    }
  });

  it('exactly three tables', () => {
    DEFAULT.template.resourceCountIs('AWS::DynamoDB::Table', 3);
  });

  it('pointInTimeRecovery: false turns PITR off on every table and records the checkov skip', () => {
    const s = synth({ pointInTimeRecovery: false });
    for (const table of [s.construct.sessions, s.construct.counters, s.construct.viewers]) {
      const t = resource(s, s.id(table));
      assert.deepEqual(t.Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: false });
      assert.ok(t.Metadata.checkov.skip.some((x: any) => x.id === 'CKV_AWS_28'));
    }
  });

  it('table names and removal policy follow the props', () => {
    const s = synth({
      sessionsTable: 'live-s',
      countersTable: 'live-c',
      viewersTable: 'live-v',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    assert.equal(resource(s, s.id(s.construct.sessions)).Properties.TableName, 'live-s');
    assert.equal(resource(s, s.id(s.construct.counters)).Properties.TableName, 'live-c');
    assert.equal(resource(s, s.id(s.construct.viewers)).Properties.TableName, 'live-v');
    assert.throws(() => synth({ viewersTable: 'live-c', countersTable: 'live-c' }), /viewersTable must differ/);
    assert.equal(resource(s, s.id(s.construct.sessions)).DeletionPolicy, 'Delete');
  });
});

describe('queues', () => {
  const { construct: c } = DEFAULT;

  it('events queue: SQS-managed SSE, redrive after 3 receives, visibility >= 6x the ingest timeout, retention fitted to the data', () => {
    const q = resource(DEFAULT, DEFAULT.id(c.queue)).Properties;
    assert.equal(q.SqsManagedSseEnabled, true);
    assert.equal(q.MaximumMessageSize, 262_144);
    assert.deepEqual(q.RedrivePolicy, {
      deadLetterTargetArn: getAtt(DEFAULT.id(c.deadLetterQueue), 'Arn'),
      maxReceiveCount: 3,
    });
    const ingestTimeout = resource(DEFAULT, DEFAULT.id(c.ingestFunction)).Properties.Timeout;
    assert.equal(ingestTimeout, 10);
    assert.ok(q.VisibilityTimeout >= 6 * ingestTimeout, `visibility ${q.VisibilityTimeout}`);
    assert.equal(q.VisibilityTimeout, 6 * 10 + 1);
    // An event older than W + G is dropped by ingest: the queue keeps it about as long as it
    // can still count (2 x (W + B + G) = 160 s), and every retry fits inside (3 x 61 s = 183 s).
    assert.equal(q.MessageRetentionPeriod, 183);
    assert.ok(q.MessageRetentionPeriod >= 3 * q.VisibilityTimeout);
  });

  it('DLQ and the aggregate on-failure queue: SSE, 14 days retention', () => {
    for (const queue of [c.deadLetterQueue, c.aggregateFailures]) {
      const q = resource(DEFAULT, DEFAULT.id(queue)).Properties;
      assert.equal(q.SqsManagedSseEnabled, true);
      assert.equal(q.MessageRetentionPeriod, 14 * 24 * 3600);
    }
    DEFAULT.template.resourceCountIs('AWS::SQS::Queue', 3);
  });

  it('maxReceiveCount and ingestTimeout props reach the redrive policy and the visibility timeout', () => {
    const s = synth({ maxReceiveCount: 3, ingestTimeout: Duration.seconds(60), ingestMaxBatchingWindow: Duration.seconds(5) });
    const q = resource(s, s.id(s.construct.queue)).Properties;
    assert.equal(q.RedrivePolicy.maxReceiveCount, 3);
    assert.equal(q.VisibilityTimeout, 6 * 60 + 5);
    assert.equal(resource(s, s.id(s.construct.ingestFunction)).Properties.Timeout, 60);
  });

  it('every queue denies non-TLS access (the only statements in queue policies)', () => {
    const policies = resourcesOfType(DEFAULT, 'AWS::SQS::QueuePolicy');
    assert.equal(policies.length, 3);
    for (const [, p] of policies) {
      assert.deepEqual(p.Properties.PolicyDocument.Statement.length, 1);
      const st = p.Properties.PolicyDocument.Statement[0];
      assert.equal(st.Effect, 'Deny');
      assert.deepEqual(st.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
    }
  });
});

describe('functions', () => {
  const { construct: c } = DEFAULT;

  it('four functions: provided.al2023, arm64, handler bootstrap, own role and log group', () => {
    DEFAULT.template.resourceCountIs('AWS::Lambda::Function', 4);
    const reserved = { ingest: undefined, aggregate: 4, read: 10, edge: undefined };
    for (const name of FUNCTION_NAMES) {
      const fn = fnOf(c, name);
      const p = resource(DEFAULT, DEFAULT.id(fn)).Properties;
      assert.equal(p.Runtime, 'provided.al2023');
      assert.deepEqual(p.Architectures, ['arm64']);
      assert.equal(p.Handler, 'bootstrap');
      assert.deepEqual(p.Role, getAtt(DEFAULT.id(c.roles[name]), 'Arn'));
      const logGroup = { LogGroup: ref(DEFAULT.id(c.logGroups[name])) };
      // The edge runs once per heartbeat: Lambda's own START/END/REPORT lines (INFO) are dropped.
      const logging =
        name === 'edge' ? { ...logGroup, LogFormat: 'JSON', SystemLogLevel: 'WARN', ApplicationLogLevel: 'INFO' } : logGroup;
      assert.deepEqual(p.LoggingConfig, logging, name);
      assert.equal(p.MemorySize, 256);
      assert.equal(p.ReservedConcurrentExecutions, reserved[name], name);
    }
    assert.equal(resource(DEFAULT, DEFAULT.id(c.aggregateFunction)).Properties.Timeout, 60);
    assert.equal(resource(DEFAULT, DEFAULT.id(c.readFunction)).Properties.Timeout, 10);
    assert.equal(resource(DEFAULT, DEFAULT.id(fnOf(c, 'edge'))).Properties.Timeout, 5);
  });

  it('every function gets exactly the documented environment, with the documented defaults', () => {
    for (const fn of [c.aggregateFunction, c.readFunction]) {
      assert.deepEqual(resource(DEFAULT, DEFAULT.id(fn)).Properties.Environment, { Variables: ENV_DEFAULTS });
    }
    assert.deepEqual(resource(DEFAULT, DEFAULT.id(c.ingestFunction)).Properties.Environment, {
      Variables: { ...ENV_DEFAULTS, LIVECOUNT_DEAD_LETTER_QUEUE_URL: ref(DEFAULT.id(c.deadLetterQueue)) },
    });
    assert.deepEqual(resource(DEFAULT, DEFAULT.id(fnOf(c, 'edge'))).Properties.Environment, {
      Variables: {
        ...ENV_DEFAULTS,
        LIVECOUNT_CORS_ORIGINS: '*',
        LIVECOUNT_TOKEN_SECRET_ARN: ref(DEFAULT.id(c.tokenSecret as secretsmanager.Secret)),
      },
    });
  });

  it('the environment is the contract: its variables, and its defaults where the contract has one', () => {
    const contractVariables = Object.keys(CONTRACT.environment);
    for (const [name, value] of Object.entries(ENV_DEFAULTS)) {
      if (name === 'RUST_LOG') continue;
      assert.ok(contractVariables.includes(name), `${name} is not in infra/contract.json`);
      const rule = CONTRACT.environment[name];
      if (typeof rule.default === 'number') assert.equal(value, String(rule.default), name);
    }
    for (const [name, rule] of Object.entries(CONTRACT.environment) as [string, any][]) {
      if (typeof rule.min === 'number') {
        const prop = (Object.keys(CONFIG_VARIABLES) as (keyof typeof CONFIG_VARIABLES)[]).find((k) => CONFIG_VARIABLES[k] === name);
        assert.ok(prop, `no prop for ${name}`);
        assert.deepEqual(CONFIG_RANGES[prop], [rule.min, rule.max], name);
        assert.throws(() => synth({ [prop]: rule.min - 1 } as LivecountProps), new RegExp(prop), `${prop} below`);
        assert.throws(() => synth({ [prop]: rule.max + 1 } as LivecountProps), new RegExp(prop), `${prop} above`);
      }
    }
  });

  it('props rename through to the environment variables of the same name', () => {
    const s = synth({
      sessionsTable: 'my-sessions',
      countersTable: 'my-counters',
      viewersTable: 'my-viewers',
      windowSeconds: 30,
      bucketSeconds: 10,
      graceSeconds: 120,
      sessionShards: 256,
      maxConcurrentWrites: 32,
      logLevel: 'debug',
      deploymentName: 'live-eu',
      counterTtlDays: 30,
    });
    const expected = {
      LIVECOUNT_DEPLOYMENT: 'live-eu',
      LIVECOUNT_SESSIONS_TABLE: 'my-sessions',
      LIVECOUNT_COUNTERS_TABLE: 'my-counters',
      LIVECOUNT_VIEWERS_TABLE: 'my-viewers',
      LIVECOUNT_WINDOW_SECONDS: '30',
      LIVECOUNT_BUCKET_SECONDS: '10',
      LIVECOUNT_GRACE_SECONDS: '120',
      LIVECOUNT_SESSION_SHARDS: '256',
      LIVECOUNT_MAX_CONCURRENT_WRITES: '32',
      LIVECOUNT_COUNTER_TTL_DAYS: '30',
      RUST_LOG: 'debug',
    };
    for (const fn of [s.construct.aggregateFunction, s.construct.readFunction]) {
      assert.deepEqual(resource(s, s.id(fn)).Properties.Environment.Variables, expected);
    }
    assert.deepEqual(s.construct.environment, expected);
  });

  it('breakdowns reach every function, and a malformed one is refused at synth', () => {
    const s = synth({ breakdowns: 'device=web,ios,android,tv;country=US,GB' });
    for (const fn of [s.construct.aggregateFunction, s.construct.readFunction]) {
      assert.equal(
        resource(s, s.id(fn)).Properties.Environment.Variables.LIVECOUNT_BREAKDOWNS,
        'device=web,ios,android,tv;country=US,GB',
      );
    }
    assert.ok(Object.keys(CONTRACT.environment).includes('LIVECOUNT_BREAKDOWNS'));
    assert.throws(() => synth({ breakdowns: 'colour=red' }), /breakdowns/);
    assert.throws(() => synth({ breakdowns: 'device=thirteen-chars' }), /breakdowns/);
  });

  it('memory, timeouts and reserved concurrency follow the props', () => {
    const s = synth({
      memorySize: 512,
      aggregateTimeout: Duration.seconds(120),
      readTimeout: Duration.seconds(3),
      reservedConcurrency: { read: 20 },
    });
    assert.equal(resource(s, s.id(s.construct.ingestFunction)).Properties.MemorySize, 512);
    assert.equal(resource(s, s.id(s.construct.aggregateFunction)).Properties.Timeout, 120);
    const read = resource(s, s.id(s.construct.readFunction));
    assert.equal(read.Properties.Timeout, 3);
    assert.equal(read.Properties.ReservedConcurrentExecutions, 20);
    assert.ok(!read.Metadata.checkov.skip.some((x: any) => x.id === 'CKV_AWS_115'), 'no concurrency skip when set');
  });

  it('code comes from a zip file or a folder, by default from target/lambda/<name>/bootstrap.zip', () => {
    const zip = path.join(tempDir('livecount-zip-'), 'bootstrap.zip');
    fs.writeFileSync(zip, 'PK\u0005\u0006' + '\u0000'.repeat(18)); // an empty zip archive
    const s = synth({ ingestCode: zip });
    const fromZip = resource(s, s.id(s.construct.ingestFunction));
    assert.match(fromZip.Properties.Code.S3Key, /\.zip$/);
    assert.match(fromZip.Metadata['aws:asset:path'], /\.zip$/, 'a zip is used as it is');
    const fromDir = resource(s, s.id(s.construct.aggregateFunction));
    assert.doesNotMatch(fromDir.Metadata['aws:asset:path'], /\.zip$/, 'a folder is zipped at deploy');
    const root = findRepoRoot();
    assert.ok(fs.existsSync(path.join(root, 'Cargo.toml')), root);
    for (const name of FUNCTION_NAMES) {
      assert.equal(defaultCodePath(name), path.join(root, 'target', 'lambda', name, 'bootstrap.zip'));
    }
  });

  it('a missing code path fails synth with a message naming make package', () => {
    assert.throws(
      () => synth({ ingestCode: path.join(CODE, 'nope.zip') }),
      /ingest function's code is missing .*make package/,
    );
  });
});

describe('event source mappings', () => {
  const { construct: c } = DEFAULT;

  it('ingest: from the events queue, batch 100, window 1 s, ReportBatchItemFailures, at most 50 concurrent', () => {
    const m = resource(DEFAULT, DEFAULT.id(c.ingestMapping)).Properties;
    assert.deepEqual(m, {
      EventSourceArn: getAtt(DEFAULT.id(c.queue), 'Arn'),
      FunctionName: ref(DEFAULT.id(c.ingestFunction)),
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 50 },
    });
  });

  it('warm throughput: none by default; the sizing rule\'s write units when set, on each table', () => {
    for (const id of [DEFAULT.id(DEFAULT.construct.sessions), DEFAULT.id(DEFAULT.construct.counters)]) {
      assert.equal(resource(DEFAULT, id).Properties.WarmThroughput, undefined);
    }
    const s = synth({ sessionsWarmWriteUnits: 300_000, countersWarmWriteUnits: 8_000 });
    assert.deepEqual(resource(s, s.id(s.construct.sessions)).Properties.WarmThroughput, {
      ReadUnitsPerSecond: 12_000,
      WriteUnitsPerSecond: 300_000,
    });
    assert.deepEqual(resource(s, s.id(s.construct.counters)).Properties.WarmThroughput, {
      ReadUnitsPerSecond: 12_000,
      WriteUnitsPerSecond: 8_000,
    });
    assert.throws(() => synth({ sessionsWarmWriteUnits: 3_999 }), /sessionsWarmWriteUnits/);
    assert.throws(() => synth({ countersWarmWriteUnits: 10_000_001 }), /countersWarmWriteUnits/);
  });

  it('ingest: batch size, window and maximum concurrency are props', () => {
    const s = synth({ ingestBatchSize: 500, ingestMaxBatchingWindow: Duration.seconds(3), ingestMaxConcurrency: 200 });
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: getAtt(s.id(s.construct.queue), 'Arn'),
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 3,
      ScalingConfig: { MaximumConcurrency: 200 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('aggregate: sessions stream, TRIM_HORIZON, 100 / 1 s, no bisecting, partial failures, 5 retries, records kept W + B + G (80 s), on-failure queue, parallelization 1', () => {
    const m = resource(DEFAULT, DEFAULT.id(c.aggregateMapping)).Properties;
    assert.deepEqual(m, {
      EventSourceArn: getAtt(DEFAULT.id(c.sessions), 'StreamArn'),
      FunctionName: ref(DEFAULT.id(c.aggregateFunction)),
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 1,
      BisectBatchOnFunctionError: false,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 80,
      DestinationConfig: { OnFailure: { Destination: getAtt(DEFAULT.id(c.aggregateFailures), 'Arn') } },
      ParallelizationFactor: 1,
    });
  });

  it('aggregate: every setting is a prop', () => {
    const s = synth({
      aggregateBatchSize: 1000,
      aggregateMaxBatchingWindow: Duration.seconds(5),
      aggregateRetryAttempts: 3,
      aggregateMaxRecordAge: Duration.minutes(10),
      aggregateParallelizationFactor: 4,
    });
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: getAtt(s.id(s.construct.sessions), 'StreamArn'),
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 5,
      MaximumRetryAttempts: 3,
      MaximumRecordAgeInSeconds: 600,
      ParallelizationFactor: 4,
      BisectBatchOnFunctionError: false,
    });
  });

  it('exactly two mappings', () => {
    DEFAULT.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
  });
});

describe('the public edge (Function URL)', () => {
  const { construct: c } = DEFAULT;
  const edgeEnv = (x: Synth) => resource(x, x.id(fnOf(x.construct, 'edge'))).Properties.Environment.Variables;
  const statements = (x: Synth, name: 'ingest' | 'edge') =>
    resource(x, x.id(x.construct.roles[name])).Properties.Policies[0].PolicyDocument.Statement;

  it('players post to a public Function URL (auth NONE) of the edge; the function answers CORS itself', () => {
    const edge = fnOf(c, 'edge');
    const url = resource(DEFAULT, DEFAULT.id(c.edgeFunctionUrl as lambda.FunctionUrl));
    assert.deepEqual(url.Properties, { AuthType: 'NONE', TargetFunctionArn: getAtt(DEFAULT.id(edge), 'Arn') });
    assert.ok(url.Metadata.checkov.skip.some((x: any) => x.id === 'CKV_AWS_258' && x.comment.length > 40));
    // Since October 2025 a public URL needs both statements; the second only via the URL.
    const fn = getAtt(DEFAULT.id(edge), 'Arn');
    const permissions = resourcesOfType(DEFAULT, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => JSON.stringify(p.FunctionName) === JSON.stringify(fn));
    assert.deepEqual(
      permissions.sort((a, b) => a.Action.localeCompare(b.Action)),
      [
        { Action: 'lambda:InvokeFunction', FunctionName: fn, InvokedViaFunctionUrl: true, Principal: '*' },
        { Action: 'lambda:InvokeFunctionUrl', FunctionName: fn, FunctionUrlAuthType: 'NONE', Principal: '*' },
      ],
    );
    assert.ok(c.edgeUrl?.endsWith('events'));
    DEFAULT.template.resourceCountIs('AWS::ApiGatewayV2::Api', 0);
  });

  it('signed by default: the stack creates the secret; only the edge gets its ARN (never the secret) and may read it', () => {
    DEFAULT.template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    const secretId = DEFAULT.id(c.tokenSecret as secretsmanager.Secret);
    const secret = resource(DEFAULT, secretId);
    assert.deepEqual(secret.Properties.GenerateSecretString, { ExcludePunctuation: true, PasswordLength: 48 });
    for (const id of ['CKV_AWS_149', 'CKV2_AWS_57']) {
      assert.ok(secret.Metadata.checkov.skip.some((x: any) => x.id === id), id);
    }
    assert.equal(edgeEnv(DEFAULT).LIVECOUNT_TOKEN_SECRET_ARN.Ref, secretId);
    assert.equal(edgeEnv(DEFAULT).LIVECOUNT_UNSIGNED, undefined);
    assert.deepEqual(statements(DEFAULT, 'edge').at(-1), {
      Sid: 'ReadTokenSecret',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: ref(secretId),
    });
    // The events queue is the relays' path, authenticated by IAM: ingest holds no secret.
    const ingest = resource(DEFAULT, DEFAULT.id(c.ingestFunction)).Properties.Environment.Variables;
    assert.equal(ingest.LIVECOUNT_TOKEN_SECRET_ARN, undefined);
    assert.ok(!statements(DEFAULT, 'ingest').some((st: { Sid: string }) => st.Sid.includes('Token')));
  });

  it('a given secret is used instead; under a customer-managed key the edge may decrypt with it, through Secrets Manager only', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:livecount-tokens-AbCdEf';
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    const s = synth({ tokenSecretArn: arn, tokenSecretKmsKeyArn: key });
    s.template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    assert.equal(edgeEnv(s).LIVECOUNT_TOKEN_SECRET_ARN, arn);
    const edge = statements(s, 'edge');
    assert.deepEqual(edge.at(-2).Resource, arn);
    assert.deepEqual(edge.at(-1), {
      Sid: 'DecryptTokenSecret',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: key,
      Condition: { StringLike: { 'kms:ViaService': 'secretsmanager.*.amazonaws.com' } },
    });
  });

  it('unsigned only when said: LIVECOUNT_UNSIGNED=allow, no secret and no grant; with a secret ARN it is refused', () => {
    const s = synth({ signedSessions: false });
    s.template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    assert.equal(edgeEnv(s).LIVECOUNT_UNSIGNED, 'allow');
    assert.equal(edgeEnv(s).LIVECOUNT_TOKEN_SECRET_ARN, undefined);
    assert.ok(!statements(s, 'edge').some((st: { Sid: string }) => st.Sid.includes('Token')));
    assert.equal(s.construct.tokenSecret, undefined);
    assert.throws(
      () => synth({ signedSessions: false, tokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:x' }),
      /signedSessions is false but tokenSecretArn/,
    );
  });

  it('no flood shield by default: players post to the function URL itself', () => {
    DEFAULT.template.resourceCountIs('AWS::CloudFront::Distribution', 1); // the badge's
    assert.equal(c.edgeShield, undefined);
    assert.equal(edgeEnv(DEFAULT).LIVECOUNT_ORIGIN_SECRET_ARN, undefined);
  });

  const WEB_ACL = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/livecount-flood/0a1b2c3d-4e5f-6789-abcd-ef0123456789';

  it('edgeWebAclArn: a CloudFront shield with that web ACL passes every POST to the edge with the origin secret, which only the edge may read, and the viewer country', () => {
    const s = synth({ edgeWebAclArn: WEB_ACL });
    const shield = s.construct.edgeShield as cloudfront.Distribution;
    const config = resource(s, s.id(shield)).Properties.DistributionConfig;
    assert.equal(config.WebACLId, WEB_ACL);
    const behavior = config.DefaultCacheBehavior;
    assert.deepEqual(behavior.AllowedMethods.sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
    assert.equal(behavior.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', 'CachingDisabled');
    const requests = resource(s, behavior.OriginRequestPolicyId.Ref).Properties.OriginRequestPolicyConfig;
    assert.deepEqual(requests.HeadersConfig, {
      HeaderBehavior: 'whitelist',
      Headers: ['Content-Type', 'Origin', 'Access-Control-Request-Method', 'Access-Control-Request-Headers', 'CloudFront-Viewer-Country'],
    });
    assert.deepEqual(requests.CookiesConfig, { CookieBehavior: 'none' });
    assert.deepEqual(requests.QueryStringsConfig, { QueryStringBehavior: 'none' });
    const secretId = s.id(s.construct.originSecret as secretsmanager.Secret);
    const [header] = config.Origins[0].OriginCustomHeaders;
    assert.equal(header.HeaderName, 'x-livecount-origin');
    assert.ok(JSON.stringify(header.HeaderValue).includes(`{{resolve:secretsmanager:`), 'a dynamic reference, not the value');
    assert.ok(JSON.stringify(header.HeaderValue).includes(secretId));
    assert.deepEqual(edgeEnv(s).LIVECOUNT_ORIGIN_SECRET_ARN, ref(secretId));
    assert.deepEqual(
      statements(s, 'edge').find((st: { Sid: string }) => st.Sid === 'ReadOriginSecret'),
      { Sid: 'ReadOriginSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: ref(secretId) },
    );
    assert.ok(s.construct.edgeUrl?.startsWith('https://') && s.construct.edgeUrl.endsWith('/events'));
    assert.ok(JSON.stringify(s.stack.resolve(s.construct.edgeUrl)).includes(s.id(shield)), 'EdgeUrl is the shield');
    assertNoWildcards(s.json);
  });

  it('edgeWebAclArn is refused without the edge, and when it is not a CLOUDFRONT-scope web ACL in us-east-1', () => {
    assert.throws(() => synth({ edgeWebAclArn: WEB_ACL, publicEdge: false }), /publicEdge is false/);
    const regional = 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/x/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    assert.throws(() => synth({ edgeWebAclArn: regional }), /CLOUDFRONT-scope web ACL, created in us-east-1/);
  });

  it('CORS origins are a prop; the edge can be turned off', () => {
    const s = synth({ edgeCorsOrigins: ['https://player.example', 'https://tv.example'] });
    assert.equal(edgeEnv(s).LIVECOUNT_CORS_ORIGINS, 'https://player.example,https://tv.example');
    const off = synth({ publicEdge: false });
    off.template.resourceCountIs('AWS::Lambda::Function', 3);
    assert.equal(off.construct.edgeFunction, undefined);
    assert.equal(off.construct.edgeUrl, undefined);
    assert.equal(off.construct.alarms.EdgeRefusals, undefined);
    assert.throws(() => synth({ edgeTimeout: Duration.seconds(0) }), /edgeTimeout/);
  });
});

describe('read API (Function URL) and the badge CDN', () => {
  const { construct: c } = DEFAULT;

  it('the read URL is always AWS_IAM, without CORS by default', () => {
    const url = resource(DEFAULT, DEFAULT.id(c.readUrl)).Properties;
    assert.deepEqual(url, {
      AuthType: 'AWS_IAM',
      TargetFunctionArn: getAtt(DEFAULT.id(c.readFunction), 'Arn'),
    });
    const s = synth({ allowedOrigins: ['https://dash.example.com'] });
    assert.deepEqual(resource(s, s.id(s.construct.readUrl)).Properties.Cors, {
      AllowMethods: ['GET'],
      AllowOrigins: ['https://dash.example.com'],
      MaxAge: 3600,
    });
  });

  it('CloudFront signs every badge request (origin access control) and marks it public; only it may call the read URL', () => {
    const distribution = c.badgeDistribution as cloudfront.Distribution;
    const config = resource(DEFAULT, DEFAULT.id(distribution)).Properties.DistributionConfig;
    assert.equal(config.Origins.length, 1);
    const origin = config.Origins[0];
    assert.deepEqual(origin.OriginCustomHeaders, [{ HeaderName: 'x-livecount-public', HeaderValue: '1' }]);
    assert.ok(origin.OriginAccessControlId, 'an origin access control');
    const [, oac] = resourcesOfType(DEFAULT, 'AWS::CloudFront::OriginAccessControl')[0];
    assert.equal(oac.Properties.OriginAccessControlConfig.OriginAccessControlOriginType, 'lambda');
    assert.equal(oac.Properties.OriginAccessControlConfig.SigningBehavior, 'always');
    assert.equal(oac.Properties.OriginAccessControlConfig.SigningProtocol, 'sigv4');
    const cdn = resourcesOfType(DEFAULT, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => p.Principal === 'cloudfront.amazonaws.com');
    assert.deepEqual(cdn.map((p) => p.Action).sort(), ['lambda:InvokeFunction', 'lambda:InvokeFunctionUrl']);
    for (const p of cdn) {
      assert.deepEqual(p.FunctionName, getAtt(DEFAULT.id(c.readUrl), 'FunctionArn'));
      assert.ok(JSON.stringify(p.SourceArn).includes(DEFAULT.id(distribution)), 'limited to this distribution');
    }
    // Nobody else may invoke the read function: its URL stays AWS_IAM.
    const others = resourcesOfType(DEFAULT, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => p.Principal === '*');
    assert.ok(others.every((p) => JSON.stringify(p.FunctionName).includes(DEFAULT.id(fnOf(c, 'edge')))));
    assert.ok(c.badgeUrl?.startsWith('https://'));
  });

  it('the badge is cached as the read function says (max-age=1), bounded 0-10 s, keyed by its path alone; GET and HEAD over HTTPS', () => {
    const config = resource(DEFAULT, DEFAULT.id(c.badgeDistribution as cloudfront.Distribution)).Properties
      .DistributionConfig;
    const behavior = config.DefaultCacheBehavior;
    assert.deepEqual(behavior.AllowedMethods, ['GET', 'HEAD']);
    assert.equal(behavior.ViewerProtocolPolicy, 'redirect-to-https');
    assert.equal(behavior.Compress, true);
    assert.equal(config.PriceClass, 'PriceClass_100');
    const [, policy] = resourcesOfType(DEFAULT, 'AWS::CloudFront::CachePolicy')[0];
    const p = policy.Properties.CachePolicyConfig;
    assert.deepEqual([p.MinTTL, p.DefaultTTL, p.MaxTTL], [0, 1, 10]);
    const key = p.ParametersInCacheKeyAndForwardedToOrigin;
    assert.equal(key.HeadersConfig.HeaderBehavior, 'none');
    assert.equal(key.CookiesConfig.CookieBehavior, 'none');
    assert.equal(key.QueryStringsConfig.QueryStringBehavior, 'none');
    const skips = resource(DEFAULT, DEFAULT.id(c.badgeDistribution as cloudfront.Distribution)).Metadata.checkov.skip;
    assert.ok(skips.length >= 5 && skips.every((x: any) => x.comment.length > 30));
  });

  it('badgeCdn: false has no distribution', () => {
    const s = synth({ badgeCdn: false });
    s.template.resourceCountIs('AWS::CloudFront::Distribution', 0);
    assert.equal(s.construct.badgeUrl, undefined);
  });
});

/** Every policy document in the template: role inline policies, trust policies, queue policies. */
function policyDocuments(json: any): { where: string; doc: any }[] {
  const out: { where: string; doc: any }[] = [];
  for (const [id, r] of Object.entries(json.Resources as Record<string, any>)) {
    const p = r.Properties ?? {};
    if (p.PolicyDocument) out.push({ where: id, doc: p.PolicyDocument });
    if (p.AssumeRolePolicyDocument) out.push({ where: `${id} trust`, doc: p.AssumeRolePolicyDocument });
    for (const inline of p.Policies ?? []) out.push({ where: `${id} ${inline.PolicyName}`, doc: inline.PolicyDocument });
  }
  return out;
}

const asList = (x: unknown): unknown[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/**
 * No `*` action and no `*` resource in any policy. The one allowed exception is the queues'
 * TLS-only statement: a Deny of `sqs:*` (denying every action is the point of it).
 */
function assertNoWildcards(json: any): void {
  const docs = policyDocuments(json);
  assert.ok(docs.length > 0);
  for (const { where, doc } of docs) {
    for (const st of doc.Statement) {
      const isTlsDeny =
        st.Effect === 'Deny' &&
        st.Action === 'sqs:*' &&
        JSON.stringify(st.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } });
      for (const action of asList(st.Action)) {
        assert.equal(typeof action, 'string', `${where}: action ${JSON.stringify(action)}`);
        if (!isTlsDeny) assert.ok(!(action as string).includes('*'), `${where}: wildcard action ${action}`);
      }
      for (const r of asList(st.Resource)) {
        assert.notEqual(r, '*', `${where}: resource "*"`);
        if (typeof r === 'string') assert.ok(!r.includes('*'), `${where}: wildcard resource ${r}`);
      }
      assert.equal(st.NotAction, undefined, `${where}: NotAction`);
      assert.equal(st.NotResource, undefined, `${where}: NotResource`);
    }
  }
  // Anything else that could carry permissions: no managed policies, no separate IAM policies.
  for (const [id, r] of Object.entries(json.Resources as Record<string, any>)) {
    assert.ok(r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::ManagedPolicy', `${id}: ${r.Type}`);
    assert.equal(r.Properties?.ManagedPolicyArns, undefined, `${id}: managed policies`);
  }
}

describe('IAM', () => {
  const { construct: c } = DEFAULT;
  const inline = (name: FunctionName) => {
    const role = resource(DEFAULT, DEFAULT.id(c.roles[name])).Properties;
    assert.deepEqual(role.AssumeRolePolicyDocument, {
      Version: '2012-10-17',
      Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
    });
    assert.equal(role.ManagedPolicyArns, undefined);
    assert.equal(role.Policies.length, 1);
    assert.equal(role.Policies[0].PolicyDocument.Version, '2012-10-17');
    return role.Policies[0].PolicyDocument.Statement;
  };
  const logs = (name: FunctionName) => ({
    Sid: 'OwnLogGroup',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: getAtt(DEFAULT.id(c.logGroups[name]), 'Arn'),
  });

  it('ingest: its own log group, UpdateItem on the sessions table, consume the events queue', () => {
    assert.deepEqual(inline('ingest'), [
      logs('ingest'),
      { Sid: 'WriteSessions', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: getAtt(DEFAULT.id(c.sessions), 'Arn') },
      {
        Sid: 'ConsumeEvents',
        Effect: 'Allow',
        Action: ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
        Resource: getAtt(DEFAULT.id(c.queue), 'Arn'),
      },
      {
        Sid: 'DeadLetterInvalidEvents',
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Resource: getAtt(DEFAULT.id(c.deadLetterQueue), 'Arn'),
      },
    ]);
  });

  it("each role allows every operation infra/contract.json says its function calls", () => {
    const actions = (name: FunctionName, props: LivecountProps = {}) => {
      const s = synth(props);
      const doc = resource(s, s.id(s.construct.roles[name])).Properties.Policies[0].PolicyDocument;
      return doc.Statement.flatMap((st: any) => (Array.isArray(st.Action) ? st.Action : [st.Action]));
    };
    for (const name of FUNCTION_NAMES) {
      const granted = actions(name);
      for (const operation of CONTRACT.operations[name]) {
        assert.ok(granted.includes(operation), `${name} calls ${operation} but its role does not allow it`);
      }
    }
  });

  it('aggregate: its own log group, UpdateItem on the counters and viewers tables, read the sessions stream, send to the on-failure queue', () => {
    assert.deepEqual(inline('aggregate'), [
      logs('aggregate'),
      { Sid: 'WriteCounters', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: getAtt(DEFAULT.id(c.counters), 'Arn') },
      { Sid: 'MarkViewers', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: getAtt(DEFAULT.id(c.viewers), 'Arn') },
      {
        Sid: 'ReadSessionsStream',
        Effect: 'Allow',
        Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
        Resource: getAtt(DEFAULT.id(c.sessions), 'StreamArn'),
      },
      {
        Sid: 'ReportFailedBatches',
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Resource: getAtt(DEFAULT.id(c.aggregateFailures), 'Arn'),
      },
    ]);
  });

  it('edge: its own log group, UpdateItem on the sessions table, GetItem on the counters table, read the token secret', () => {
    assert.deepEqual(inline('edge'), [
      logs('edge'),
      { Sid: 'WriteSessions', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: getAtt(DEFAULT.id(c.sessions), 'Arn') },
      { Sid: 'ReadCounts', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: getAtt(DEFAULT.id(c.counters), 'Arn') },
      {
        Sid: 'ReadTokenSecret',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: ref(DEFAULT.id(c.tokenSecret as secretsmanager.Secret)),
      },
    ]);
  });

  it('read: its own log group, GetItem and Scan on the counters table', () => {
    assert.deepEqual(inline('read'), [
      logs('read'),
      {
        Sid: 'ReadCounters',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'],
        Resource: getAtt(DEFAULT.id(c.counters), 'Arn'),
      },
    ]);
  });

  it('one role per function, and nothing else grants permissions', () => {
    DEFAULT.template.resourceCountIs('AWS::IAM::Role', 4);
    DEFAULT.template.resourceCountIs('AWS::IAM::Policy', 0);
  });

  it('no "*" action and no "*" resource anywhere in the template (the TLS-only queue Deny aside)', () => {
    assertNoWildcards(DEFAULT.json);
  });

  it('the grant helpers give a producer SendMessage only and a dashboard GetItem only', () => {
    const b = build();
    const producer = new iam.Role(b.stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() });
    const dashboard = new iam.Role(b.stack, 'Dashboard', { assumedBy: new iam.AccountRootPrincipal() });
    b.construct.grantSendEvents(producer);
    b.construct.grantReadCounts(dashboard);
    b.construct.grantInvokeReadUrl(dashboard);
    const t = Template.fromStack(b.stack);
    const s = { ...b, id: (c: { node: { defaultChild?: unknown } }) => b.stack.getLogicalId(c.node.defaultChild as CfnElement) };
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: s.stack.getLogicalId(producer.node.defaultChild as CfnElement) }],
      PolicyDocument: {
        Statement: [{ Action: 'sqs:SendMessage', Effect: 'Allow', Resource: getAtt(s.id(s.construct.queue), 'Arn') }],
      },
    });
    const readFn = getAtt(s.id(s.construct.readFunction), 'Arn');
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: s.stack.getLogicalId(dashboard.node.defaultChild as CfnElement) }],
      PolicyDocument: {
        Statement: [
          { Action: 'dynamodb:GetItem', Effect: 'Allow', Resource: getAtt(s.id(s.construct.counters), 'Arn') },
          {
            Action: 'lambda:InvokeFunctionUrl',
            Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
            Effect: 'Allow',
            Resource: readFn,
          },
          {
            Action: 'lambda:InvokeFunction',
            Condition: { Bool: { 'lambda:InvokedViaFunctionUrl': true } },
            Effect: 'Allow',
            Resource: readFn,
          },
        ],
      },
    });
  });
});

describe('logs', () => {
  it('one log group per function, 14 days by default', () => {
    DEFAULT.template.resourceCountIs('AWS::Logs::LogGroup', 4);
    for (const name of FUNCTION_NAMES) {
      assert.equal(resource(DEFAULT, DEFAULT.id(DEFAULT.construct.logGroups[name])).Properties.RetentionInDays, 14);
    }
  });

  it('logRetention is a prop', () => {
    const s = synth({ logRetention: logs.RetentionDays.ONE_MONTH });
    for (const [, g] of resourcesOfType(s, 'AWS::Logs::LogGroup')) assert.equal(g.Properties.RetentionInDays, 30);
  });
});

describe('alarms', () => {
  const { construct: c } = DEFAULT;
  const alarm = (s: Synth, key: string) => {
    const a = s.construct.alarms[key];
    assert.ok(a, `no alarm ${key}`);
    return resource(s, s.id(a)).Properties;
  };

  it('there are exactly the documented alarms', () => {
    assert.deepEqual(Object.keys(c.alarms).sort(), [
      'AggregateErrors',
      'AggregateFailureArrivals',
      'AggregateIteratorAge',
      'AggregateThrottles',
      'CountersTableThrottled',
      'DeadLetterArrivals',
      'EdgeErrors',
      'EdgeRefusals',
      'EdgeThrottles',
      'EdgeWritesFailed',
      'EventsQueueAge',
      'IngestErrors',
      'IngestThrottles',
      'MessagesInvalid',
      'PipelineStalled',
      'ReadErrors',
      'ReadThrottles',
      'RecordsNotApplied',
      'SecondsMissed',
      'SessionsTableThrottled',
      'UnreadableRecords',
      'ViewersTableThrottled',
    ]);
    DEFAULT.template.resourceCountIs('AWS::CloudWatch::Alarm', 22);
    for (const [key, a] of Object.entries(c.alarms)) {
      const p = resource(DEFAULT, DEFAULT.id(a)).Properties;
      assert.equal(p.TreatMissingData, key === 'PipelineStalled' ? 'breaching' : 'notBreaching', key);
      assert.ok(p.AlarmDescription.startsWith('livecount: '));
      assert.equal(p.AlarmActions, undefined);
    }
  });

  /** The metrics of a metric-math alarm, by id. */
  const mathMetrics = (a: any): Record<string, any> =>
    Object.fromEntries(a.Metrics.filter((m: any) => m.MetricStat).map((m: any) => [m.Id, m.MetricStat]));
  const expression = (a: any): string => a.Metrics.find((m: any) => m.Expression).Expression;

  it('events queue age: oldest message above W / 2 (7.5 s), 2 of 3 minutes', () => {
    const a = alarm(DEFAULT, 'EventsQueueAge');
    assert.equal(a.Namespace, 'AWS/SQS');
    assert.equal(a.MetricName, 'ApproximateAgeOfOldestMessage');
    assert.deepEqual(a.Dimensions, [{ Name: 'QueueName', Value: getAtt(DEFAULT.id(c.queue), 'QueueName') }]);
    assert.equal(a.Threshold, 7.5);
    assert.equal(a.Period, 60);
    assert.equal(a.EvaluationPeriods, 3);
    assert.equal(a.DatapointsToAlarm, 2);
    assert.equal(alarm(synth({ windowSeconds: 30 }), 'EventsQueueAge').Threshold, 15);
  });

  it('aggregate iterator age: IteratorAge max > 10 s, 2 of 3 minutes', () => {
    const a = alarm(DEFAULT, 'AggregateIteratorAge');
    assert.equal(a.Namespace, 'AWS/Lambda');
    assert.equal(a.MetricName, 'IteratorAge');
    assert.deepEqual(a.Dimensions, [{ Name: 'FunctionName', Value: ref(DEFAULT.id(c.aggregateFunction)) }]);
    assert.equal(a.Statistic, 'Maximum');
    assert.equal(a.Threshold, 10_000);
    assert.ok(a.Threshold <= 20_000);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(a.Period, 60);
    assert.equal(a.EvaluationPeriods, 3);
    assert.equal(a.DatapointsToAlarm, 2);
  });

  it('pipeline stalled: events applied but no aggregate invocation for 3 minutes, silence breaching', () => {
    const a = alarm(DEFAULT, 'PipelineStalled');
    // Events applied by the edge (players) or by ingest (relays) both need the aggregator.
    assert.equal(expression(a), 'IF(FILL(applied, 0) + FILL(edgeApplied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)');
    const m = mathMetrics(a);
    for (const [id, fn] of [
      ['applied', 'ingest'],
      ['edgeApplied', 'edge'],
    ]) {
      assert.equal(m[id].Metric.Namespace, 'livecount');
      assert.equal(m[id].Metric.MetricName, 'EventsApplied');
      assert.deepEqual(m[id].Metric.Dimensions, [
        { Name: 'Deployment', Value: 'Test' },
        { Name: 'Function', Value: fn },
      ]);
    }
    const noEdge = synth({ publicEdge: false });
    assert.equal(expression(alarm(noEdge, 'PipelineStalled')), 'IF(FILL(applied, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)');
    assert.equal(m.invocations.Metric.MetricName, 'Invocations');
    assert.deepEqual(m.invocations.Metric.Dimensions, [{ Name: 'FunctionName', Value: ref(DEFAULT.id(c.aggregateFunction)) }]);
    assert.equal(a.Threshold, 1);
    assert.equal(a.EvaluationPeriods, 3);
    assert.equal(a.TreatMissingData, 'breaching');
  });

  it('throttling on each table: read + write throttle events > 0', () => {
    for (const [key, table] of [
      ['SessionsTableThrottled', c.sessions],
      ['CountersTableThrottled', c.counters],
      ['ViewersTableThrottled', c.viewers],
    ] as const) {
      const a = alarm(DEFAULT, key);
      assert.equal(expression(a), 'FILL(reads, 0) + FILL(writes, 0)');
      const m = mathMetrics(a);
      assert.equal(m.reads.Metric.MetricName, 'ReadThrottleEvents');
      assert.equal(m.writes.Metric.MetricName, 'WriteThrottleEvents');
      assert.deepEqual(m.writes.Metric.Dimensions, [{ Name: 'TableName', Value: ref(DEFAULT.id(table)) }]);
      assert.equal(a.Threshold, 0);
    }
  });

  it('dead letters alarm on arrivals (sent, or a rise in depth), not on depth, so they do not stay red', () => {
    for (const [key, queue] of [
      ['DeadLetterArrivals', c.deadLetterQueue],
      ['AggregateFailureArrivals', c.aggregateFailures],
    ] as const) {
      const a = alarm(DEFAULT, key);
      assert.equal(expression(a), 'MAX([FILL(sent, 0), FILL(DIFF(visible), 0)])');
      const m = mathMetrics(a);
      assert.equal(m.sent.Metric.MetricName, 'NumberOfMessagesSent');
      assert.equal(m.visible.Metric.MetricName, 'ApproximateNumberOfMessagesVisible');
      assert.deepEqual(m.sent.Metric.Dimensions, [{ Name: 'QueueName', Value: getAtt(DEFAULT.id(queue), 'QueueName') }]);
      assert.equal(a.Threshold, 0);
      assert.equal(a.EvaluationPeriods, 1);
    }
  });

  it('Errors and Throttles of each function: Sum over 5 minutes > 0', () => {
    for (const [name, fn] of [
      ['Ingest', c.ingestFunction],
      ['Aggregate', c.aggregateFunction],
      ['Read', c.readFunction],
    ] as const) {
      for (const metric of ['Errors', 'Throttles']) {
        const a = alarm(DEFAULT, `${name}${metric}`);
        assert.equal(a.Namespace, 'AWS/Lambda');
        assert.equal(a.MetricName, metric);
        assert.deepEqual(a.Dimensions, [{ Name: 'FunctionName', Value: ref(DEFAULT.id(fn)) }]);
        assert.equal(a.Statistic, 'Sum');
        assert.equal(a.Period, 300);
        assert.equal(a.Threshold, 0);
        assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
      }
    }
  });

  it('invalid messages: livecount/MessagesInvalid{Function=ingest} Sum over 5 minutes > 0', () => {
    assert.deepEqual(
      { ...alarm(DEFAULT, 'MessagesInvalid'), AlarmDescription: undefined },
      {
        AlarmDescription: undefined,
        Namespace: 'livecount',
        MetricName: 'MessagesInvalid',
        Dimensions: [
          { Name: 'Deployment', Value: 'Test' },
          { Name: 'Function', Value: 'ingest' },
        ],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      },
    );
  });

  it('unreadable stream records: livecount/UnreadableRecords{Function=aggregate} > 0', () => {
    const a = alarm(DEFAULT, 'UnreadableRecords');
    assert.equal(a.Namespace, 'livecount');
    assert.deepEqual(a.Dimensions, [
      { Name: 'Deployment', Value: 'Test' },
      { Name: 'Function', Value: 'aggregate' },
    ]);
    assert.equal(a.Threshold, 0);
  });

  it("seconds a stream's figures could not count: livecount/SecondsMissed{Function=aggregate} > 0", () => {
    const a = alarm(DEFAULT, 'SecondsMissed');
    assert.equal(a.MetricName, 'SecondsMissed');
    assert.deepEqual(a.Dimensions, [
      { Name: 'Deployment', Value: 'Test' },
      { Name: 'Function', Value: 'aggregate' },
    ]);
    assert.equal(a.Threshold, 0);
  });

  it('counter updates DynamoDB rejected: livecount/RecordsNotApplied{Function=aggregate} > 0', () => {
    const a = alarm(DEFAULT, 'RecordsNotApplied');
    assert.equal(a.Namespace, 'livecount');
    assert.equal(a.MetricName, 'RecordsNotApplied');
    assert.deepEqual(a.Dimensions, [
      { Name: 'Deployment', Value: 'Test' },
      { Name: 'Function', Value: 'aggregate' },
    ]);
    assert.equal(a.Threshold, 0);
  });

  it('edge refusals: the sum of every refusal reason over 5 minutes above 1000 (an inflation attempt); failed writes above 0', () => {
    const a = alarm(DEFAULT, 'EdgeRefusals');
    assert.equal(a.Threshold, 1000);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    const metrics = Object.values(mathMetrics(a));
    assert.deepEqual(metrics.map((m) => m.Metric.MetricName).sort(), [...REFUSAL_METRICS].sort());
    for (const m of metrics) {
      assert.deepEqual(m.Metric.Dimensions, [
        { Name: 'Deployment', Value: 'Test' },
        { Name: 'Function', Value: 'edge' },
      ]);
      assert.equal(m.Period, 300);
    }
    assert.equal(expression(a).split('+').length, REFUSAL_METRICS.length);
    const w = alarm(DEFAULT, 'EdgeWritesFailed');
    assert.equal(w.MetricName, 'WritesFailed');
    assert.equal(w.Threshold, 0);
  });

  it('thresholds and actions are props', () => {
    const s = synth({ iteratorAgeAlarmSeconds: 120, invalidMessagesThreshold: 25, refusalsAlarmThreshold: 50 });
    assert.equal(alarm(s, 'AggregateIteratorAge').Threshold, 120_000);
    assert.equal(alarm(s, 'MessagesInvalid').Threshold, 25);
    assert.equal(alarm(s, 'EdgeRefusals').Threshold, 50);

    const app = new App({ context: CONTEXT });
    const stack = new Stack(app, 'WithActions');
    const topic = new sns.Topic(stack, 'Topic');
    new Livecount(stack, 'Livecount', { ...codeProps, alarmActions: [new SnsAction(topic)] });
    const alarms = Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm');
    assert.equal(Object.keys(alarms).length, 22);
    for (const a of Object.values(alarms)) {
      assert.deepEqual(a.Properties.AlarmActions, [ref(stack.getLogicalId(topic.node.defaultChild as CfnElement))]);
    }
  });
});

describe('dashboard', () => {
  it('graphs events applied/stale/invalid, the aggregate metrics, iterator age, errors, throttles and DLQ depth', () => {
    // The names the handlers emit (core/src/metrics.rs callers in ingest/ and aggregate/).
    for (const m of ['EventsApplied', 'EventsStale', 'MessagesInvalid']) assert.ok((INGEST_METRICS as readonly string[]).includes(m), m);
    assert.deepEqual([...INGEST_METRICS], CONTRACT.metrics.ingest, 'the ingest metrics are the contract');
    assert.deepEqual([...AGGREGATE_METRICS], CONTRACT.metrics.aggregate, 'the aggregate metrics are the contract');
    assert.deepEqual([...EDGE_METRICS], CONTRACT.metrics.edge, 'the edge metrics are the contract');
    DEFAULT.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const [[, d]] = resourcesOfType(DEFAULT, 'AWS::CloudWatch::Dashboard');
    // The body is an Fn::Join of JSON text and references; its literal parts carry the metric specs.
    const body = JSON.stringify(d.Properties.DashboardBody);
    for (const [fn, metrics] of [
      ['ingest', INGEST_METRICS],
      ['aggregate', AGGREGATE_METRICS],
      ['edge', ['EventsApplied', 'EventsStale', ...REFUSAL_METRICS]],
    ] as const) {
      for (const m of metrics) {
        const spec = JSON.stringify(['livecount', m, 'Deployment', 'Test', 'Function', fn]).slice(0, -1);
        assert.ok(body.includes(JSON.stringify(spec).slice(1, -1)), `${fn} ${m}`);
      }
    }
    for (const m of ['IteratorAge', 'Errors', 'Throttles', 'Duration', 'ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage']) {
      assert.ok(body.includes(`\\"${m}\\"`), m);
    }
    for (const title of ['Edge: counted and refused per minute', 'Ingest (relays): events per minute', 'Aggregate iterator age', 'Errors and throttles', 'Dead letters']) {
      assert.ok(body.includes(title), title);
    }
  });

  it('dashboardName is a prop', () => {
    const s = synth({ dashboardName: 'livecount-prod' });
    s.template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'livecount-prod' });
  });
});

describe('checkov skips', () => {
  it('every skip in the template carries a justification', () => {
    let count = 0;
    for (const s of [DEFAULT, synth({ signedSessions: false, pointInTimeRecovery: false })]) {
      for (const [id, r] of Object.entries(s.json.Resources as Record<string, any>)) {
        for (const skip of r.Metadata?.checkov?.skip ?? []) {
          assert.match(skip.id, /^CKV2?_AWS_\d+$/, id);
          assert.ok(typeof skip.comment === 'string' && skip.comment.length >= 40, `${id} ${skip.id}: no reason`);
          count++;
        }
      }
    }
    assert.ok(count > 10);
  });

  it('functions skip VPC, DLQ, env CMK, code signing, X-Ray and (when unset) reserved concurrency', () => {
    const fn = resource(DEFAULT, DEFAULT.id(DEFAULT.construct.ingestFunction));
    assert.deepEqual(
      fn.Metadata.checkov.skip.map((x: any) => x.id).sort(),
      ['CKV_AWS_115', 'CKV_AWS_116', 'CKV_AWS_117', 'CKV_AWS_173', 'CKV_AWS_272', 'CKV_AWS_50'].sort(),
    );
  });
});

describe('parity with Terraform (infra/contract.json settings)', () => {
  it('every shared setting has the default the contract names, as the Terraform tests check for Terraform', () => {
    const { construct: c } = DEFAULT;
    const props = (construct: { node: { defaultChild?: unknown } }) => resource(DEFAULT, DEFAULT.id(construct)).Properties;
    const ingestMapping = props(c.ingestMapping);
    const aggregateMapping = props(c.aggregateMapping);
    const queue = props(c.queue);
    const fn = (f: lambda.Function) => props(f);
    const table = props(c.sessions);
    const edge = fnOf(c, 'edge');
    const actual: Record<string, unknown> = {
      max_receive_count: queue.RedrivePolicy.maxReceiveCount,
      ingest_batch_size: ingestMapping.BatchSize,
      ingest_max_batching_window_seconds: ingestMapping.MaximumBatchingWindowInSeconds,
      ingest_max_concurrency: ingestMapping.ScalingConfig.MaximumConcurrency,
      ingest_timeout_seconds: fn(c.ingestFunction).Timeout,
      aggregate_batch_size: aggregateMapping.BatchSize,
      aggregate_max_batching_window_seconds: aggregateMapping.MaximumBatchingWindowInSeconds,
      aggregate_retry_attempts: aggregateMapping.MaximumRetryAttempts,
      aggregate_max_record_age_seconds: aggregateMapping.MaximumRecordAgeInSeconds,
      aggregate_parallelization_factor: aggregateMapping.ParallelizationFactor,
      expected_stream_shards: fn(c.aggregateFunction).ReservedConcurrentExecutions / aggregateMapping.ParallelizationFactor,
      memory_size: fn(c.ingestFunction).MemorySize,
      log_retention_days: props(c.logGroups.ingest).RetentionInDays,
      point_in_time_recovery: table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled,
      deletion_protection: table.DeletionProtectionEnabled,
      architecture: fn(c.ingestFunction).Architectures[0],
      reserved_concurrency: {
        aggregate: fn(c.aggregateFunction).ReservedConcurrentExecutions,
        read: fn(c.readFunction).ReservedConcurrentExecutions,
      },
      timeout_seconds: {
        ingest: fn(c.ingestFunction).Timeout,
        aggregate: fn(c.aggregateFunction).Timeout,
        read: fn(c.readFunction).Timeout,
        edge: fn(edge).Timeout,
      },
      queue_visibility_timeout_seconds: queue.VisibilityTimeout,
      queue_retention_seconds: queue.MessageRetentionPeriod,
      iterator_age_alarm_seconds: resource(DEFAULT, DEFAULT.id(c.alarms.AggregateIteratorAge)).Properties.Threshold / 1000,
      public_edge: props(c.edgeFunctionUrl as lambda.FunctionUrl).AuthType === 'NONE',
      signed_sessions: fn(edge).Environment.Variables.LIVECOUNT_TOKEN_SECRET_ARN !== undefined,
      badge_cdn: resourcesOfType(DEFAULT, 'AWS::CloudFront::Distribution').length === 1,
      edge_cors_origins: fn(edge).Environment.Variables.LIVECOUNT_CORS_ORIGINS.split(','),
      refusals_alarm_threshold: resource(DEFAULT, DEFAULT.id(c.alarms.EdgeRefusals)).Properties.Threshold,
      edge_web_acl_arn: c.edgeShield ? 'set' : null,
      sessions_warm_write_units: table.WarmThroughput?.WriteUnitsPerSecond ?? null,
      counters_warm_write_units: props(c.counters).WarmThroughput?.WriteUnitsPerSecond ?? null,
    };
    const settings = Object.entries(CONTRACT.settings).filter(([name]) => name !== '_comment') as [string, any][];
    assert.deepEqual(Object.keys(actual).sort(), settings.map(([name]) => name).sort(), 'every contract setting is checked here');
    for (const [name, setting] of settings) assert.deepEqual(actual[name], setting.default, name);
  });
});

describe('two deployments in one account and region', () => {
  it('two stacks in one app name no table, function, queue, log group, alarm, API or dashboard alike', () => {
    const app = new App({ context: CONTEXT });
    const names: string[] = [];
    const stacks = ['LiveEu', 'LiveUs'].map((id) => {
      const stack = new Stack(app, id);
      new Livecount(stack, 'Livecount', codeProps);
      return stack;
    });
    for (const stack of stacks) {
      const id = stack.stackName;
      const template = Template.fromStack(stack).toJSON();
      for (const [logicalId, r] of Object.entries(template.Resources as Record<string, any>)) {
        const p = r.Properties ?? {};
        for (const key of ['TableName', 'FunctionName', 'QueueName', 'LogGroupName', 'AlarmName', 'Name', 'DashboardName', 'RoleName']) {
          // A name CloudFormation generates is unique by construction; only names set here can collide.
          if (typeof p[key] === 'string') names.push(`${r.Type} ${p[key]}`);
        }
        if (r.Type === 'AWS::Lambda::Function') {
          assert.equal(p.Environment.Variables.LIVECOUNT_DEPLOYMENT, id, `${logicalId}: the Deployment dimension`);
        }
      }
    }
    assert.ok(names.some((n) => n.includes('LiveEu-sessions')) && names.some((n) => n.includes('LiveUs-sessions')), names.join('\n'));
    assert.equal(new Set(names).size, names.length, `colliding names:\n${names.sort().join('\n')}`);
  });
});

describe('validation (the ranges the Rust side enforces)', () => {
  const cases: [string, LivecountProps, RegExp][] = [
    ['window 0', { windowSeconds: 0 }, /windowSeconds must be a whole number from 1 to 3600/],
    ['window 3601', { windowSeconds: 3601 }, /windowSeconds/],
    ['bucket 1.5', { bucketSeconds: 1.5 }, /bucketSeconds/],
    ['grace 68401', { graceSeconds: 68_401 }, /graceSeconds must be a whole number from 1 to 68400/],
    ['shards 4097', { sessionShards: 4097 }, /sessionShards must be a whole number from 1 to 4096/],
    ['writes 0', { maxConcurrentWrites: 0 }, /maxConcurrentWrites/],
    ['same tables', { sessionsTable: 'same', countersTable: 'same' }, /must differ/],
    ['bad table name', { sessionsTable: 'has space' }, /sessionsTable must be 3-255 characters/],
    ['short table name', { countersTable: 'ab' }, /countersTable/],
    ['maxReceiveCount 0', { maxReceiveCount: 0 }, /maxReceiveCount/],
    ['big SQS batch without window', { ingestBatchSize: 100, ingestMaxBatchingWindow: Duration.seconds(0) }, /ingestMaxBatchingWindow of at least 1 second/],
    ['parallelization 0', { aggregateParallelizationFactor: 0 }, /aggregateParallelizationFactor/],
    ['parallelization 11', { aggregateParallelizationFactor: 11 }, /aggregateParallelizationFactor/],
    ['a bucket span over 20', { graceSeconds: 600 }, /may be at most 20/],
    ['record age 30 s', { aggregateMaxRecordAge: Duration.seconds(30) }, /aggregateMaxRecordAge/],
    ['retries -2', { aggregateRetryAttempts: -2 }, /aggregateRetryAttempts/],
  ];
  for (const [name, props, error] of cases) {
    it(`refuses ${name}`, () => assert.throws(() => synth(props), error));
  }

  it('accepts the edges of every range', () => {
    synth({ windowSeconds: 3600, bucketSeconds: 3600, graceSeconds: 64_800, sessionShards: 4096, maxConcurrentWrites: 1024 });
    synth({ windowSeconds: 1, bucketSeconds: 1, graceSeconds: 18, aggregateParallelizationFactor: 10 });
    synth({ ingestBatchSize: 10, ingestMaxBatchingWindow: Duration.seconds(0), aggregateRetryAttempts: -1 });
  });
});

describe('app', () => {
  it('context keys become props (and so environment variables)', () => {
    const app = new App({ context: CONTEXT });
    const stack = new Stack(app, 'Ctx');
    const ctx: Record<string, string> = {
      codeDir: CODE,
      windowSeconds: '20',
      sessionShards: '64',
      countersTable: 'ctx-counters',
      viewersTable: 'ctx-viewers',
      signedSessions: 'false',
      badgeCdn: 'false',
      edgeCorsOrigins: 'https://tv.example',
      allowedOrigins: 'https://a.example, https://b.example',
      maxReceiveCount: '7',
      aggregateMaxRecordAgeSeconds: '900',
      logRetentionDays: '7',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
      readReservedConcurrency: '5',
    };
    const props = propsFromContext(stack, (k) => ctx[k]);
    assert.equal(props.ingestCode, path.join(CODE, 'ingest'));
    assert.deepEqual(props.allowedOrigins, ['https://a.example', 'https://b.example']);
    const c = new Livecount(stack, 'Livecount', props);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          LIVECOUNT_WINDOW_SECONDS: '20',
          LIVECOUNT_SESSION_SHARDS: '64',
          LIVECOUNT_COUNTERS_TABLE: 'ctx-counters',
          LIVECOUNT_VIEWERS_TABLE: 'ctx-viewers',
        }),
      },
      ReservedConcurrentExecutions: 5,
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ LIVECOUNT_UNSIGNED: 'allow', LIVECOUNT_CORS_ORIGINS: 'https://tv.example' }),
      },
    });
    t.resourceCountIs('AWS::CloudFront::Distribution', 0);
    t.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: Match.objectLike({ maxReceiveCount: 7 }) });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', { MaximumRecordAgeInSeconds: 900 });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:ops'] });
    assert.equal(c.environment.LIVECOUNT_WINDOW_SECONDS, '20');
  });

  it('bad context values are refused with the key named', () => {
    const stack = new Stack(new App(), 'Bad');
    assert.throws(() => propsFromContext(stack, (k) => (k === 'signedSessions' ? 'yes' : undefined)), /signedSessions/);
    assert.throws(() => propsFromContext(stack, (k) => (k === 'windowSeconds' ? 'ten' : undefined)), /windowSeconds/);
    assert.throws(() => propsFromContext(stack, (k) => (k === 'logRetentionDays' ? '15' : undefined)), /logRetentionDays/);
  });

  it('bin/livecount.js synthesizes one environment-agnostic stack, without the CLI', () => {
    const out = tempDir('livecount-out-');
    execFileSync(process.execPath, [path.join(CDK_DIR, 'dist', 'bin', 'livecount.js')], {
      env: {
        ...process.env,
        CDK_OUTDIR: out,
        CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_JSON.context, codeDir: CODE, stackName: 'LivecountTest' }),
      },
      stdio: 'pipe',
    });
    const template = JSON.parse(fs.readFileSync(path.join(out, 'LivecountTest.template.json'), 'utf8'));
    const types = Object.values(template.Resources as Record<string, any>).map((r) => r.Type);
    assert.equal(types.filter((t) => t === 'AWS::Lambda::Function').length, 4);
    assertNoWildcards(template);
    assert.deepEqual(Object.keys(template.Outputs).sort(), [
      'AggregateFailureQueueUrl',
      'BadgeUrl',
      'CountersTableName',
      'DashboardName',
      'DeadLetterQueueUrl',
      'EdgeUrl',
      'EventsQueueArn',
      'EventsQueueUrl',
      'ReadUrl',
      'SessionsTableName',
      'TokenSecretArn',
      'ViewersTableName',
    ]);
    const [urlId] = Object.entries(template.Resources as Record<string, any>).find(
      ([, r]) => r.Type === 'AWS::Lambda::Url' && r.Properties.AuthType === 'NONE',
    )!;
    assert.deepEqual(template.Outputs.EdgeUrl.Value, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [urlId, 'FunctionUrl'] }, 'events']] });
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.artifacts.LivecountTest.environment, 'aws://unknown-account/unknown-region');
  });
});
