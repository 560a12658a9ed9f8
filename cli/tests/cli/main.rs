//! End-to-end tests of `livecount`: `dev` with its dashboard in headless Chromium, the web
//! player, the post-deploy smoke test, `send` and `count`, all with the app in-process (its
//! `DevApp`, built from the arguments the binary parses); and the process itself where it is
//! what is tested: the errors a person can run into (exit statuses, one clear line) and Ctrl-C.
//! They use the DynamoDB Local that `make test` starts (`AWS_ENDPOINT_URL_DYNAMODB`), except
//! where a test starts its own.

mod dashboard;
mod docs;
mod errors;
mod harness;
mod player;
mod send_and_count;
mod smoke;
