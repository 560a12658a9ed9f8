//! The one audience generator of the tests and benchmarks: players that start, heartbeat every
//! 5 s from their own phase with their own (wrong) device clock, and leave with a `stop` or
//! silently, on a schedule or when a test says so.

use livecount_core::EventKind;

/// Players of one or more streams.
pub struct Crowd {
    pub players: Vec<Player>,
}

pub struct Player {
    pub stream_id: String,
    pub session_id: String,
    /// The tick of its `start`; it heartbeats every 5 ticks from then on.
    pub phase: i64,
    /// How wrong the device clock is (ms): only the order of one session's events is trusted.
    pub skew_ms: i64,
    /// When it leaves on its own: at that tick, with a `stop` unless silent.
    pub leaves: Option<(i64, bool)>,
    pub state: PlayerState,
    /// The `userId` it sends with every event, if any.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerState {
    Watching,
    /// Sends `stop` at its next turn, then nothing.
    Stopping,
    Stopped,
    /// Stops sending anything (closed tab, lost network).
    Silent,
}

impl Crowd {
    /// Five sessions of one stream, each with its own phase in the 5 s heartbeat cycle and its
    /// own device clock (years off, minutes off, exact); a test makes them leave.
    pub fn five_players(stream_id: &str) -> Self {
        let skews = [
            0,
            -3 * 365 * 86_400_000,
            7 * 60_000,
            -90_000,
            365 * 86_400_000,
        ];
        let players = (0..5)
            .map(|i| Player {
                stream_id: stream_id.to_owned(),
                session_id: format!("9b2f61c4-0000-4000-8000-00000000000{i}"),
                phase: i,
                skew_ms: skews[i as usize],
                leaves: None,
                state: PlayerState::Watching,
                user_id: None,
            })
            .collect();
        Self { players }
    }

    /// A deterministic crowd: `streams` x `players` sessions, some joining late, 40 % leaving
    /// within `ticks`, half of those silently. Players `2k` and `2k + 1` of every stream are one
    /// viewer (`userId` `user-{k}`, the same in every stream), except every fourth pair, which
    /// sends none.
    pub fn random(seed: u64, streams: usize, players: usize, ticks: i64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut crowd = Vec::new();
        for s in 0..streams {
            for p in 0..players {
                let phase = if rng.bool() {
                    rng.i64(0..5)
                } else {
                    rng.i64(0..ticks / 2)
                };
                let leaves = (rng.f64() < 0.4).then(|| (rng.i64(phase + 1..ticks), rng.bool()));
                crowd.push(Player {
                    stream_id: format!("stream-{s:02}"),
                    session_id: format!("s{s:02}-p{p:02}-{:08x}", rng.u32(..)),
                    phase,
                    skew_ms: 0,
                    leaves,
                    state: PlayerState::Watching,
                    user_id: (p / 2 % 4 != 3).then(|| format!("user-{}", p / 2)),
                });
            }
        }
        Self { players: crowd }
    }

    /// The stream of the first player (the only one of [`Crowd::five_players`]).
    pub fn stream_id(&self) -> &str {
        self.players.first().map_or("", |p| p.stream_id.as_str())
    }

    /// The message bodies sent at `tick`, with the server's clock at `now_ms`.
    pub fn bodies(&mut self, tick: i64, now_ms: i64) -> Vec<String> {
        self.players
            .iter_mut()
            .filter_map(|player| {
                let kind = player.event_at(tick)?;
                let user = player
                    .user_id
                    .clone()
                    .map_or(serde_json::Value::Null, Into::into);
                let mut fields = player.breakdown_fields(tick).to_vec();
                fields.push(("userId", user));
                Some(crate::event_body_with(
                    &player.stream_id,
                    &player.session_id,
                    kind.as_str(),
                    now_ms + player.skew_ms,
                    &fields,
                ))
            })
            .collect()
    }
}

/// The devices players send: `fridge` is listed by no breakdown, and one in four sends none.
pub const DEVICES: [Option<&str>; 4] = [Some("web"), Some("tv"), Some("fridge"), None];

/// The CDNs players play from.
pub const CDNS: [&str; 2] = ["cdn-a", "cdn-b"];

impl Player {
    /// The breakdown fields it sends at `tick`: a device it keeps, and a CDN that a third of
    /// the players switch every 20 ticks (as players fail over).
    pub fn breakdown_fields(&self, tick: i64) -> [(&'static str, serde_json::Value); 2] {
        let n = self.session_id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        let device = DEVICES[n % DEVICES.len()].map_or(serde_json::Value::Null, Into::into);
        let switches = n % 3 == 0;
        let cdn = CDNS[(n + if switches { (tick / 20) as usize } else { 0 }) % CDNS.len()];
        [("device", device), ("cdn", cdn.into())]
    }

    /// What the player sends at `tick`, if anything.
    fn event_at(&mut self, tick: i64) -> Option<EventKind> {
        if tick < self.phase {
            return None;
        }
        if let Some((at, silent)) = self.leaves
            && tick >= at
            && self.state == PlayerState::Watching
        {
            self.state = if silent {
                PlayerState::Silent
            } else {
                PlayerState::Stopped
            };
            return (tick == at && !silent).then_some(EventKind::Stop);
        }
        if (tick - self.phase) % 5 != 0 {
            return None;
        }
        match self.state {
            PlayerState::Watching if tick == self.phase => Some(EventKind::Start),
            PlayerState::Watching => Some(EventKind::Heartbeat),
            PlayerState::Stopping => {
                self.state = PlayerState::Stopped;
                Some(EventKind::Stop)
            }
            PlayerState::Stopped | PlayerState::Silent => None,
        }
    }
}
