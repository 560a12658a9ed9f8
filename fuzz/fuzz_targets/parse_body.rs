//! Any SQS body: parsing and validation never panic, and whatever is accepted obeys the rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livecount_core::event::{MAX_EVENTS_PER_BODY, parse_body};
use livecount_core::ids::MAX_ID_CHARS;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let _ = livecount_api::split_messages(body);
    let Ok(parsed) = parse_body(body) else {
        return;
    };
    assert!(!parsed.events.is_empty() && parsed.events.len() <= MAX_EVENTS_PER_BODY);
    let valid: Vec<_> = parsed.events.into_iter().flatten().collect();
    for event in &valid {
        for id in [event.stream_id.as_str(), event.session_id.as_str()] {
            assert!(!id.is_empty() && id.chars().count() <= MAX_ID_CHARS);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
            );
        }
        assert!(event.ts >= 0);
    }
    let winners =
        livecount_core::coalesce::newest_per_session(valid.iter().cloned().map(|e| (e, ())));
    assert!(winners.len() <= valid.len());
});
