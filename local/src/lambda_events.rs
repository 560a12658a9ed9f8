//! The events Lambda delivers, built in one place: an SQS message as the SQS event source hands
//! it over ([`sqs_message`]: the local queue's, the simulation's, the test kit's and the Lambda
//! contract test's), and a DynamoDB stream record as the DynamoDB event source does
//! ([`stream_record`]: the stream poller's, from DynamoDB Local's records, and the simulation's,
//! from its model's changes). The shapes are those of
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html> and
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html>.

use aws_lambda_events::event::dynamodb::{EventRecord, StreamViewType, UserIdentity};
use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use chrono::DateTime;
use std::collections::{BTreeMap, HashMap};

/// The region the emulation's events come from (`awsRegion`).
pub const REGION: &str = "us-east-1";

/// The events queue the emulation's messages come from (`eventSourceARN`).
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:livecount-events";

/// A sessions table's stream, for records that come from no real stream (`eventSourceARN`).
pub const SESSIONS_STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/sessions/stream/2024-01-01T00:00:00.000";

/// An SQS message as Lambda's SQS event source delivers it: message `id` with `body`, sent
/// (`SentTimestamp`, also its `ApproximateFirstReceiveTimestamp`) at `sent_ms`, received
/// `receives` times (`ApproximateReceiveCount`), with message `attributes` (a value that reads
/// as a number is a `Number`, any other a `String`).
pub fn sqs_message(
    id: &str,
    body: &str,
    sent_ms: i64,
    receives: u32,
    attributes: &BTreeMap<String, String>,
) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.receipt_handle = Some(format!("local-{id}"));
    message.body = Some(body.to_owned());
    message.attributes = HashMap::from([
        ("ApproximateReceiveCount".to_owned(), receives.to_string()),
        ("SentTimestamp".to_owned(), sent_ms.to_string()),
        ("SenderId".to_owned(), "AIDAIENQZJOLO23YVJ4VO".to_owned()),
        (
            "ApproximateFirstReceiveTimestamp".to_owned(),
            sent_ms.to_string(),
        ),
    ]);
    message.message_attributes = attributes
        .iter()
        .map(|(name, value)| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = Some(value.clone());
            attribute.data_type = Some(
                if value.parse::<f64>().is_ok() {
                    "Number"
                } else {
                    "String"
                }
                .to_owned(),
            );
            (name.clone(), attribute)
        })
        .collect();
    message.event_source = Some("aws:sqs".to_owned());
    message.event_source_arn = Some(QUEUE_ARN.to_owned());
    message.aws_region = Some(REGION.to_owned());
    message
}

/// What a stream record of a `NEW_AND_OLD_IMAGES` stream says about one change of an item.
#[derive(Debug, Clone, Default)]
pub struct StreamChange {
    /// `eventID`.
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    pub keys: serde_dynamo::Item,
    /// Empty for an `INSERT`.
    pub old_image: serde_dynamo::Item,
    /// Empty for a `REMOVE`.
    pub new_image: serde_dynamo::Item,
    pub sequence_number: String,
    /// `ApproximateCreationDateTime`, in epoch milliseconds.
    pub created_ms: i64,
    pub size_bytes: i64,
    /// `userIdentity`: the DynamoDB service's ([`service_identity`]) on a TTL deletion.
    pub user_identity: Option<UserIdentity>,
}

/// The record Lambda's DynamoDB event source delivers for `change`, read from the stream
/// `stream_arn` in `region`.
pub fn stream_record(change: StreamChange, region: &str, stream_arn: &str) -> EventRecord {
    let mut record = EventRecord::default();
    record.aws_region = region.to_owned();
    record.event_id = change.event_id;
    record.event_name = change.event_name;
    record.event_source = Some("aws:dynamodb".to_owned());
    record.event_version = Some("1.1".to_owned());
    record.event_source_arn = Some(stream_arn.to_owned());
    record.user_identity = change.user_identity;
    record.change.approximate_creation_date_time =
        DateTime::from_timestamp_millis(change.created_ms).unwrap_or_default();
    record.change.keys = change.keys;
    record.change.old_image = change.old_image;
    record.change.new_image = change.new_image;
    record.change.sequence_number = Some(change.sequence_number);
    record.change.size_bytes = change.size_bytes;
    record.change.stream_view_type = Some(StreamViewType::NewAndOldImages);
    record
}

/// The `userIdentity` AWS puts on TTL deletions.
pub fn service_identity() -> UserIdentity {
    let mut user = UserIdentity::default();
    user.type_ = "Service".to_owned();
    user.principal_id = "dynamodb.amazonaws.com".to_owned();
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqs_message_reads_as_the_documented_event_does() {
        let attributes = BTreeMap::from([
            ("reasons".to_owned(), "bad".to_owned()),
            ("receivedAt".to_owned(), "1700000000000".to_owned()),
        ]);
        let built = sqs_message("m-1", "{}", 1_700_000_000_000, 2, &attributes);
        let documented: SqsMessage = serde_json::from_value(serde_json::json!({
            "messageId": "m-1",
            "receiptHandle": "local-m-1",
            "body": "{}",
            "attributes": {
                "ApproximateReceiveCount": "2",
                "SentTimestamp": "1700000000000",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1700000000000"
            },
            "messageAttributes": {
                "reasons": {"stringValue": "bad", "dataType": "String"},
                "receivedAt": {"stringValue": "1700000000000", "dataType": "Number"}
            },
            "eventSource": "aws:sqs",
            "eventSourceARN": QUEUE_ARN,
            "awsRegion": REGION
        }))
        .expect("the documented shape");
        assert_eq!(built, documented);
    }

    #[test]
    fn a_stream_record_reads_as_the_documented_record_does() {
        let item = |json| serde_dynamo::to_item(json).expect("an item");
        let built = stream_record(
            StreamChange {
                event_id: "e-1".to_owned(),
                event_name: "REMOVE".to_owned(),
                keys: item(serde_json::json!({"PK": "st#1", "SK": "a"})),
                old_image: item(serde_json::json!({"PK": "st#1", "SK": "a", "watching": true})),
                sequence_number: "42".to_owned(),
                created_ms: 1_700_000_000_000,
                size_bytes: 30,
                user_identity: Some(service_identity()),
                ..StreamChange::default()
            },
            REGION,
            SESSIONS_STREAM_ARN,
        );
        let documented: EventRecord = serde_json::from_value(serde_json::json!({
            "eventID": "e-1", "eventName": "REMOVE", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": REGION,
            "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000,
                "Keys": {"PK": {"S": "st#1"}, "SK": {"S": "a"}},
                "OldImage": {"PK": {"S": "st#1"}, "SK": {"S": "a"}, "watching": {"BOOL": true}},
                "SequenceNumber": "42",
                "SizeBytes": 30,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": SESSIONS_STREAM_ARN
        }))
        .expect("the documented shape");
        assert_eq!(built, documented);
    }
}
