#!/usr/bin/env node
// The livecount CDK app: one stack holding the Livecount construct, configured with `-c key=value`
// (see lib/context.ts for the keys). Environment-agnostic: synth needs no AWS account or lookups.
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import { propsFromContext } from '../lib/context';
import { Livecount } from '../lib/livecount';

const app = new App();
const get = (key: string): unknown => app.node.tryGetContext(key);
const stackName = (get('stackName') as string | undefined) ?? 'Livecount';
const stack = new Stack(app, stackName, {
  description: 'livecount: exact live viewer counts (Lambda, DynamoDB, SQS, CloudFront)',
});
const livecount = new Livecount(stack, 'Livecount', propsFromContext(stack, get));

const outputs: [string, string, string][] = [
  ['EventsQueueUrl', livecount.queue.queueUrl, 'Relays send batches of events here (IAM sqs:SendMessage)'],
  ['EventsQueueArn', livecount.queue.queueArn, 'For producer policies (sqs:SendMessage)'],
  ['DeadLetterQueueUrl', livecount.deadLetterQueue.queueUrl, 'Events that failed maxReceiveCount times'],
  ['AggregateFailureQueueUrl', livecount.aggregateFailures.queueUrl, 'Stream batches the aggregator gave up on'],
  ['ReadUrl', livecount.readUrl.url, 'GET /api/streams/{id}, GET /api/streams, GET / (IAM: sign with SigV4)'],
  ['SessionsTableName', livecount.sessions.tableName, 'LIVECOUNT_SESSIONS_TABLE'],
  ['CountersTableName', livecount.counters.tableName, 'Dashboards GetItem {PK: streamId, SK: "live"} here'],
  ['ViewersTableName', livecount.viewers.tableName, 'LIVECOUNT_VIEWERS_TABLE: the markers behind unique viewers'],
  ['DashboardName', livecount.dashboard.dashboardName, 'The CloudWatch dashboard'],
];
if (livecount.badgeUrl) {
  outputs.unshift(['BadgeUrl', livecount.badgeUrl, 'The audience GETs /api/streams/{id}/viewers here (cached 1 s)']);
}
if (livecount.edgeUrl) {
  outputs.unshift(['EdgeUrl', livecount.edgeUrl, 'Players POST their events here (application/json or text/plain)']);
}
if (livecount.tokenSecret) {
  outputs.push(['TokenSecretArn', livecount.tokenSecret.secretArn, 'The secret your backend signs session tokens with']);
}
for (const [id, value, description] of outputs) new CfnOutput(stack, id, { value, description });
