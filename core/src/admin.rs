//! Table administration (`livecount setup`, `livecount dev`, the tests and the benchmarks): what
//! the infrastructure does on AWS, kept apart from the calls the functions make
//! ([`crate::Store`]), which never create, delete or describe a table.

use crate::store::{Store, StoreError, TTL_ATTRIBUTE};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification, TimeToLiveStatus,
};

/// The tables of a [`Store`], as an administrator sees them.
#[derive(Debug, Clone, Copy)]
pub struct TableAdmin<'a> {
    store: &'a Store,
}

impl<'a> TableAdmin<'a> {
    /// The administration of `store`'s two tables.
    pub fn of(store: &'a Store) -> Self {
        Self { store }
    }

    /// Creates a table with string `PK`/`SK` keys and on-demand billing, with a
    /// `NEW_AND_OLD_IMAGES` stream when `with_stream`. An existing table is left as it is.
    pub async fn create_key_table(&self, table: &str, with_stream: bool) -> Result<(), StoreError> {
        let mut request = self
            .store
            .client()
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, key_type) in [("PK", KeyType::Hash), ("SK", KeyType::Range)] {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(key_type)
                        .build()?,
                );
        }
        if with_stream {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => Ok(()),
            Err(source) => Err(self.store.dynamo("CreateTable", table, source)),
        }
    }

    /// Creates the three tables as the infrastructure defines them: string `PK`/`SK` keys,
    /// on-demand billing; sessions with a `NEW_AND_OLD_IMAGES` stream and TTL on `expDate`;
    /// counters and viewers with TTL on `expiresAt`.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        self.create_key_table(self.store.sessions_table(), true)
            .await?;
        for table in [self.store.counters_table(), self.store.viewers_table()] {
            self.create_key_table(table, false).await?;
        }
        self.enable_ttl(self.store.sessions_table(), TTL_ATTRIBUTE)
            .await?;
        for table in [self.store.counters_table(), self.store.viewers_table()] {
            self.enable_ttl(table, crate::requests::EXPIRES_AT).await?;
        }
        Ok(())
    }

    /// Turns on TTL on `attribute` unless the table has it already.
    async fn enable_ttl(&self, table: &str, attribute: &str) -> Result<(), StoreError> {
        let ttl = self
            .store
            .client()
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|source| self.store.dynamo("DescribeTimeToLive", table, source))?;
        let enabled = ttl.time_to_live_description.is_some_and(|d| {
            matches!(
                d.time_to_live_status,
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
        });
        if !enabled {
            self.store
                .client()
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(attribute)
                        .build()?,
                )
                .send()
                .await
                .map_err(|source| self.store.dynamo("UpdateTimeToLive", table, source))?;
        }
        Ok(())
    }

    /// Deletes the three tables (tests and tools).
    pub async fn delete_tables(&self) -> Result<(), StoreError> {
        for table in self.store.tables() {
            self.store
                .client()
                .delete_table()
                .table_name(table)
                .send()
                .await
                .map_err(|source| self.store.dynamo("DeleteTable", table, source))?;
        }
        Ok(())
    }

    /// The ARN of the sessions table's stream, which the aggregator consumes.
    pub async fn sessions_stream_arn(&self) -> Result<String, StoreError> {
        let table = self.store.sessions_table();
        let output = self
            .store
            .client()
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|source| self.store.dynamo("DescribeTable", table, source))?;
        output
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| StoreError::NoStream {
                table: table.to_owned(),
            })
    }
}
