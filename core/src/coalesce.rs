//! Coalescing (see `docs/design.md`): within one SQS batch only the newest event of each session
//! is written.

use crate::event::PlayerEvent;
use crate::ids::{SessionId, StreamId};
use std::collections::HashMap;

/// Keeps the newest of each session's events by [`PlayerEvent::supersedes`]: `seq` when the
/// events carry it, else `ts`, and on a tie by kind (`stop` > `pause` > `heartbeat` > `start`);
/// a `start` with a later `ts` begins a new run whatever its `seq`. Each item carries a tag (the
/// SQS message it came from, say); the result keeps the winners in first-seen order.
pub fn newest_per_session<T>(
    events: impl IntoIterator<Item = (PlayerEvent, T)>,
) -> Vec<(PlayerEvent, T)> {
    let mut index: HashMap<(StreamId, SessionId), usize> = HashMap::new();
    let mut winners: Vec<(PlayerEvent, T)> = Vec::new();
    for (event, tag) in events {
        let key = (event.stream_id.clone(), event.session_id.clone());
        match index.get(&key) {
            Some(&at) => {
                if event.supersedes(&winners[at].0) {
                    winners[at] = (event, tag);
                }
            }
            None => {
                index.insert(key, winners.len());
                winners.push((event, tag));
            }
        }
    }
    winners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind::{self, *};

    fn ev(session: &str, kind: EventKind, ts: i64) -> PlayerEvent {
        PlayerEvent {
            stream_id: StreamId::parse("s").expect("valid"),
            session_id: SessionId::parse(session).expect("valid"),
            kind,
            ts,
            seq: None,
            token: None,
            position: None,
            user_id: None,
            dimensions: Default::default(),
        }
    }

    #[test]
    fn a_sequenced_start_with_a_later_ts_begins_a_new_run() {
        let seq = |kind, ts, seq| PlayerEvent {
            seq: Some(seq),
            ..ev("a", kind, ts)
        };
        let old_run = seq(Heartbeat, 100, 720);
        let reload = seq(Start, 200, 0);
        assert!(reload.supersedes(&old_run), "a reload's start, seq from 0");
        assert!(!old_run.supersedes(&reload));
        assert!(seq(Heartbeat, 205, 1).supersedes(&reload));
        let stop = seq(Stop, 300, 5);
        assert!(
            !seq(Start, 100, 0).supersedes(&stop),
            "a replayed old start"
        );
        assert!(!seq(Heartbeat, 250, 1).supersedes(&stop));
        // the old page's stop, delivered after the new run's start, does not replace it
        assert!(!seq(Stop, 150, 721).supersedes(&reload));
        let winners = newest_per_session([(old_run, 0), (reload, 1)]);
        assert_eq!(winners.iter().map(|(_, t)| *t).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn newest_event_per_session_wins() {
        // (input events, the winning tag for session "a")
        let cases: Vec<(Vec<PlayerEvent>, usize)> = vec![
            (vec![ev("a", Heartbeat, 1), ev("a", Heartbeat, 2)], 1),
            (vec![ev("a", Heartbeat, 2), ev("a", Heartbeat, 1)], 0),
            (vec![ev("a", Stop, 5), ev("a", Heartbeat, 6)], 1),
            (vec![ev("a", Heartbeat, 5), ev("a", Stop, 5)], 1),
            (vec![ev("a", Stop, 5), ev("a", Pause, 5)], 0),
            (vec![ev("a", Start, 5), ev("a", Heartbeat, 5)], 1),
            (vec![ev("a", Pause, 5), ev("a", Heartbeat, 5)], 0),
            (vec![ev("a", Heartbeat, 5), ev("a", Heartbeat, 5)], 0),
        ];
        for (events, winner) in cases {
            let tagged = events.clone().into_iter().enumerate().map(|(i, e)| (e, i));
            let out = newest_per_session(tagged);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].1, winner, "{events:?}");
        }
    }

    #[test]
    fn sessions_and_streams_are_kept_apart() {
        let mut other_stream = ev("a", Heartbeat, 1);
        other_stream.stream_id = StreamId::parse("t").expect("valid");
        let out = newest_per_session(
            [
                ev("a", Heartbeat, 1),
                ev("b", Heartbeat, 9),
                other_stream,
                ev("a", Stop, 2),
            ]
            .into_iter()
            .map(|e| (e, ())),
        );
        let got: Vec<(&str, &str, EventKind)> = out
            .iter()
            .map(|(e, ())| (e.stream_id.as_str(), e.session_id.as_str(), e.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("s", "a", Stop),
                ("s", "b", Heartbeat),
                ("t", "a", Heartbeat)
            ]
        );
    }
}
