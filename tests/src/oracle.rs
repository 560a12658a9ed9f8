//! The ground truth the tests compare against: from the bodies delivered and their receive
//! times, who is watching each stream at each second, computed from the documented rules with
//! this module's own code (its own reading of the JSON, ordering and expiry arithmetic), never by
//! calling the code under test.
//!
//! The rules (README "Events", docs/design.md): a session's events are ordered by `seq` when
//! they carry one (after every event without it), else by `ts` bounded by the receive time, ties
//! by type (`stop` > `pause` > `heartbeat` > `start`); between two events with `seq`, a `start`
//! whose bounded `ts` is later than the held event's is newer whatever its `seq`, and an event
//! with an earlier `ts` than a held `start` is not (a reloaded player's new run); the newest event
//! decides. A `start` or
//! `heartbeat` received at `r` ms counts through the second `W` after it, rounded up to a
//! multiple of `B`; a `pause` or `stop` does not count.

use livecount_core::Timing;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy)]
struct Newest {
    /// (has seq, seq or bounded ts, type rank)
    order: (bool, i64, u8),
    /// `ts`, bounded by the receive time.
    ts: i64,
    /// Last second the session counts in; `None` when not watching.
    counts_until: Option<i64>,
    /// Index of the event's breakdown fields in [`Oracle::fields`].
    fields: usize,
}

/// Every session's newest delivered event, as the sessions table should hold it.
#[derive(Debug, Default)]
pub struct Oracle {
    window_ms: i64,
    bucket_ms: i64,
    sessions: HashMap<(String, String), Newest>,
    /// Every delivery in order (session, event, receive ms), to replay the audience of a past
    /// second.
    log: Vec<((String, String), Newest, i64)>,
    streams: BTreeSet<String>,
    delivered: usize,
    /// Each delivered event's breakdown fields (`device`, `player`, `cdn`, `label`, `country`)
    /// that it carries as strings.
    fields: Vec<HashMap<&'static str, String>>,
    /// Each session's `userId`, from its first delivered event (a player sends the same one
    /// with every event of a session).
    users: HashMap<(String, String), String>,
}

/// Whether `event` replaces `held` as a session's newest (the rules in the module's doc).
fn supersedes(event: &Newest, held: &Newest) -> bool {
    let both = event.order.0 && held.order.0;
    if both && event.order.2 == 0 && event.ts > held.ts {
        true
    } else if both && held.order.2 == 0 && held.ts > event.ts {
        false
    } else {
        event.order > held.order
    }
}

impl Oracle {
    pub fn new(timing: Timing) -> Self {
        Self {
            window_ms: timing.window_seconds * 1000,
            bucket_ms: timing.bucket_seconds * 1000,
            ..Self::default()
        }
    }

    /// Delivers every event of a message body received at `recv_ms` (bodies are the tests' own,
    /// so every event in them is valid).
    pub fn deliver_body(&mut self, body: &str, recv_ms: i64) {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            return;
        };
        let events = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for event in &events {
            self.deliver(event, recv_ms);
        }
    }

    fn deliver(&mut self, event: &Value, recv_ms: i64) {
        let text = |field: &str| event[field].as_str().map(str::to_owned);
        let (Some(stream), Some(session), Some(kind)) =
            (text("streamId"), text("sessionId"), text("type"))
        else {
            return;
        };
        let Some(ts) = event["ts"].as_i64() else {
            return;
        };
        let rank = match kind.as_str() {
            "start" => 0,
            "heartbeat" => 1,
            "pause" => 2,
            "stop" => 3,
            _ => return,
        };
        self.delivered += 1;
        self.streams.insert(stream.clone());
        let bounded_ts = if ts > recv_ms { recv_ms } else { ts };
        let order = match event["seq"].as_u64() {
            Some(seq) => (true, seq as i64, rank),
            None => (false, bounded_ts, rank),
        };
        let watching = rank <= 1;
        let counts_until = watching.then(|| {
            let end_ms = recv_ms + self.window_ms;
            let buckets = (end_ms + self.bucket_ms - 1) / self.bucket_ms;
            buckets * self.bucket_ms / 1000
        });
        let fields = ["device", "player", "cdn", "label", "country"]
            .into_iter()
            .filter_map(|f| Some((f, event[f].as_str().filter(|v| !v.is_empty())?.to_owned())))
            .collect();
        self.fields.push(fields);
        let event = Newest {
            order,
            ts: bounded_ts,
            counts_until,
            fields: self.fields.len() - 1,
        };
        let key = (stream, session);
        if let Some(user) = text("userId").filter(|u| !u.is_empty()) {
            self.users.entry(key.clone()).or_insert(user);
        }
        self.log.push((key.clone(), event, recv_ms));
        if self
            .sessions
            .get(&key)
            .is_none_or(|held| supersedes(&event, held))
        {
            self.sessions.insert(key, event);
        }
    }

    /// The audience of `stream_id` at the past second `t`: each session's events replayed in
    /// delivery order, each newest one taking effect at its receive second (or at the second the
    /// event it replaced took effect, if later); a session counts at `t` if the event in effect
    /// at `t` does.
    pub fn viewers_at_second(&self, stream_id: &str, t: i64) -> u64 {
        // session -> (newest event, since when it is in effect, the event in effect at t)
        let mut sessions: HashMap<&str, (Newest, i64, Option<Newest>)> = HashMap::new();
        for ((stream, session), event, recv_ms) in &self.log {
            if stream != stream_id {
                continue;
            }
            let received = recv_ms.div_euclid(1000);
            match sessions.get_mut(session.as_str()) {
                None => {
                    let at_t = (received <= t).then_some(*event);
                    sessions.insert(session, (*event, received, at_t));
                }
                Some((held, since, at_t)) if supersedes(event, held) => {
                    *since = received.max(*since);
                    *held = *event;
                    if *since <= t {
                        *at_t = Some(*event);
                    }
                }
                Some(_) => {}
            }
        }
        sessions
            .values()
            .filter_map(|(_, _, at_t)| *at_t)
            .filter(|n| n.counts_until.is_some_and(|until| until >= t))
            .count() as u64
    }

    /// What the figures of `stream_id` over the seconds `seconds` must be, by their
    /// definitions (docs/design.md, "Figures"), from the audience of each second.
    pub fn figures(&self, stream_id: &str, seconds: std::ops::RangeInclusive<i64>) -> Figures {
        let mut figures = Figures::default();
        let last = *seconds.end();
        for t in seconds {
            let v = self.viewers_at_second(stream_id, t);
            if v > figures.peak {
                (figures.peak, figures.peak_at) = (v, Some(t));
            }
            if v > 0 {
                figures.first_at.get_or_insert(t);
                figures.last_at = Some(t);
            }
            figures.viewer_seconds += v;
            let minute = figures.minutes.entry(t - t.rem_euclid(60)).or_default();
            minute.0 = minute.0.max(v);
            minute.1 += v;
        }
        // A session starts when its first event creates its row: in the minute of the first
        // delivery (the first write, when deliveries are written in order), counted once that
        // minute is over.
        let mut first: HashMap<&(String, String), i64> = HashMap::new();
        for (key, _, recv_ms) in &self.log {
            if key.0 == stream_id {
                first.entry(key).or_insert(recv_ms.div_euclid(1000));
            }
        }
        // A viewer is unique once: the distinct `userId`s of the sessions started.
        let mut users = BTreeSet::new();
        for (key, received) in first {
            let minute = received - received.rem_euclid(60);
            if minute + 59 <= last {
                figures.sessions_started += 1;
                *figures.sessions_by_minute.entry(minute).or_default() += 1;
                users.extend(self.users.get(key));
            }
        }
        figures.unique_viewers = users.len() as u64;
        figures
    }

    /// Sessions of `stream_id` watching at `now` by their value of `field`: theirs if `listed`
    /// names it, `other` if not, `none` when their newest event has none.
    pub fn viewers_by(
        &self,
        stream_id: &str,
        now: i64,
        field: &str,
        listed: &[&str],
    ) -> std::collections::BTreeMap<String, u64> {
        let mut by_value = std::collections::BTreeMap::new();
        for ((stream, _), newest) in &self.sessions {
            if stream != stream_id || newest.counts_until.is_none_or(|t| t < now) {
                continue;
            }
            let value = match self.fields[newest.fields].get(field) {
                None => "none",
                Some(v) if listed.contains(&v.as_str()) => v.as_str(),
                Some(_) => "other",
            };
            *by_value.entry(value.to_owned()).or_default() += 1;
        }
        by_value
    }

    /// Sessions of `stream_id` watching at `now` (epoch seconds).
    pub fn viewers(&self, stream_id: &str, now: i64) -> u64 {
        self.sessions
            .iter()
            .filter(|((stream, _), n)| {
                stream == stream_id && n.counts_until.is_some_and(|t| t >= now)
            })
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

/// A stream's figures by their definitions ([`Oracle::figures`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub peak: u64,
    pub peak_at: Option<i64>,
    pub viewer_seconds: u64,
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
    /// Minute (epoch seconds of its start) → (highest, viewer-seconds).
    pub minutes: std::collections::BTreeMap<i64, (u64, u64)>,
    /// Sessions started in the minutes over by the last second, in all and by minute.
    pub sessions_started: u64,
    pub sessions_by_minute: std::collections::BTreeMap<i64, u64>,
    /// The distinct `userId`s of those sessions (docs/design.md, "Figures": unique viewers).
    pub unique_viewers: u64,
}
