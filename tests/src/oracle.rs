//! The ground truth the chaos tests compare against: from the events delivered and their receive
//! times, who is watching each stream at each instant (DESIGN §3), computed without DynamoDB.

use livecount_core::{EventKind, PlayerEvent, Timing};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy)]
struct Applied {
    order: (i64, u8),
    watching: bool,
    exp_date: i64,
}

/// Every session's newest delivered event, as the sessions table should hold it.
#[derive(Debug, Default)]
pub struct Oracle {
    timing: Timing,
    sessions: HashMap<(String, String), Applied>,
    streams: BTreeSet<String>,
    delivered: usize,
}

impl Oracle {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    /// An event delivered with receive time `recv_ms`: it wins if it is newer than what its
    /// session holds (by `ts`, then kind), as the conditional write decides.
    pub fn deliver(&mut self, event: &PlayerEvent, recv_ms: i64) {
        self.delivered += 1;
        self.streams.insert(event.stream_id.clone());
        let key = (event.stream_id.clone(), event.session_id.clone());
        let newer = self
            .sessions
            .get(&key)
            .is_none_or(|held| event.order() > held.order);
        if newer {
            self.sessions.insert(
                key,
                Applied {
                    order: event.order(),
                    watching: event.kind.is_watching(),
                    exp_date: self.timing.expiry(event.kind, recv_ms),
                },
            );
        }
    }

    /// Delivers every valid event of a message body.
    pub fn deliver_body(&mut self, body: &str, recv_ms: i64) {
        if let Ok(parsed) = livecount_core::event::parse_body(body) {
            for event in parsed.events.into_iter().flatten() {
                self.deliver(&event, recv_ms);
            }
        }
    }

    /// Sessions of `stream_id` watching at `now` (epoch seconds).
    pub fn viewers(&self, stream_id: &str, now: i64) -> u64 {
        self.sessions
            .iter()
            .filter(|((stream, _), a)| stream == stream_id && a.watching && a.exp_date >= now)
            .count() as u64
    }

    pub fn streams(&self) -> impl Iterator<Item = &String> {
        self.streams.iter()
    }

    /// Event deliveries seen (duplicates included).
    pub fn delivered(&self) -> usize {
        self.delivered
    }
}

/// A deterministic crowd: `streams` × `players` sessions heartbeating every 5 s from their own
/// phase, some joining late, some leaving with `stop` and some silently.
pub struct Crowd {
    players: Vec<CrowdPlayer>,
}

struct CrowdPlayer {
    stream: String,
    session: String,
    joins: i64,
    leaves: Option<(i64, bool)>,
}

impl Crowd {
    pub fn new(seed: u64, streams: usize, players: usize, ticks: i64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut crowd = Vec::new();
        for s in 0..streams {
            for p in 0..players {
                let joins = if rng.bool() {
                    rng.i64(0..5)
                } else {
                    rng.i64(0..ticks / 2)
                };
                let leaves = (rng.f64() < 0.4).then(|| (rng.i64(joins + 1..ticks), rng.bool()));
                crowd.push(CrowdPlayer {
                    stream: format!("stream-{s:02}"),
                    session: format!("s{s:02}-p{p:02}-{:08x}", rng.u32(..)),
                    joins,
                    leaves,
                });
            }
        }
        Self { players: crowd }
    }

    /// The message bodies sent at `tick`, with the players' clock at `now_ms`.
    pub fn bodies(&self, tick: i64, now_ms: i64) -> Vec<String> {
        let mut bodies = Vec::new();
        for p in &self.players {
            let kind = match p.leaves {
                _ if tick < p.joins => continue,
                Some((at, silent)) if tick >= at => {
                    if tick == at && !silent {
                        EventKind::Stop
                    } else {
                        continue;
                    }
                }
                _ if (tick - p.joins) % 5 != 0 => continue,
                _ if tick == p.joins => EventKind::Start,
                _ => EventKind::Heartbeat,
            };
            bodies.push(crate::event_body(
                &p.stream,
                &p.session,
                kind.as_str(),
                now_ms,
            ));
        }
        bodies
    }
}
