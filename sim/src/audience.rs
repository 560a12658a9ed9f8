//! The players: who joins, heartbeats and leaves when, as the messages their players send.
//!
//! Every viewer sends `start`, a `heartbeat` every 5 s, and on leaving either `stop` or, for
//! silent leaves, nothing. A share of messages is sent twice (a retried `SendMessage`).

/// How the audience changes over the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `viewers` join over the first 5 s and stay, replaced at `churn_per_minute` (a share of
    /// the audience joining and as many leaving every minute).
    Steady { viewers: u64, churn_per_minute: f64 },
    /// From none to `viewers` evenly over `over_s` seconds, then steady.
    FlashCrowd { viewers: u64, over_s: i64 },
    /// `viewers` join over the first 5 s; from `at_s`, every one of them sends `stop` within
    /// `over_s` seconds.
    MassExit {
        viewers: u64,
        at_s: i64,
        over_s: i64,
    },
}

/// A scenario's audience.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceSpec {
    pub shape: Shape,
    /// Streams the viewers are spread over (evenly).
    pub streams: u32,
    /// Share of leaves that send nothing.
    pub silent_share: f64,
    /// Share of messages sent twice.
    pub duplicate_share: f64,
    /// What the players send for the breakdowns' dimensions (none: no dimension fields).
    pub dimensions: Vec<DimensionMix>,
    /// Share of heartbeats on which a player switches to another option of the last of
    /// [`AudienceSpec::dimensions`] (a player moving to another CDN mid-stream).
    pub switch_share: f64,
}

/// What the players send for one dimension: each option (a value, or nothing) and the share of
/// players that send it, drawn when a player joins.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionMix {
    /// The event's field: `device`, `player`, `cdn` or `label`.
    pub field: &'static str,
    /// (what a player sends, share of players); the shares add up to 1.
    pub options: Vec<(Option<&'static str>, f64)>,
}

impl DimensionMix {
    /// The option the draw `u` in `[0, 1)` lands on.
    fn pick(&self, u: f64) -> u8 {
        let mut cumulative = 0.0;
        for (index, (_, share)) in self.options.iter().enumerate() {
            cumulative += share;
            if u < cumulative {
                return index as u8;
            }
        }
        self.options.len().saturating_sub(1) as u8
    }
}

/// Most dimensions a player sends (livecount has five).
pub const MAX_DIMENSIONS: usize = 5;

/// One message a player sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub body: String,
    pub stream: u32,
    pub session: u32,
    /// The event counts (start, heartbeat) or ends the session (stop).
    pub watching: bool,
}

const HEARTBEAT_MS: i64 = 5_000;

#[derive(Debug, Clone)]
struct Viewer {
    stream: u32,
    seq: u64,
    active: bool,
    /// Position in `Players::active`.
    slot: usize,
    /// The option it sends of each of the spec's dimensions.
    options: [u8; MAX_DIMENSIONS],
}

/// The audience's state on the simulated clock.
#[derive(Debug)]
pub struct Players {
    spec: AudienceSpec,
    viewers: Vec<Viewer>,
    active: Vec<u32>,
    /// Heartbeats due, by 10 ms slot of the 5 s cycle.
    wheel: Vec<Vec<u32>>,
    rng: fastrand::Rng,
    /// Draws the dimensions' options, apart from `rng`, so an audience with dimensions joins,
    /// heartbeats and leaves exactly as the same audience without them.
    options_rng: fastrand::Rng,
    step_ms: i64,
    join_debt: f64,
    leave_debt: f64,
    exit_order: Vec<u32>,
}

impl Players {
    pub fn new(spec: AudienceSpec, step_ms: i64, seed: u64) -> Self {
        let slots = (HEARTBEAT_MS / step_ms) as usize;
        Self {
            spec,
            viewers: Vec::new(),
            active: Vec::new(),
            wheel: vec![Vec::new(); slots],
            rng: fastrand::Rng::with_seed(seed),
            options_rng: fastrand::Rng::with_seed(seed ^ 0xd1ce),
            step_ms,
            join_debt: 0.0,
            leave_debt: 0.0,
            exit_order: Vec::new(),
        }
    }

    pub fn spec(&self) -> &AudienceSpec {
        &self.spec
    }

    /// Viewers watching now (the players' own view, before any rule of livecount).
    pub fn watching(&self) -> usize {
        self.active.len()
    }

    fn slot_of(&self, t_ms: i64) -> usize {
        ((t_ms.rem_euclid(HEARTBEAT_MS)) / self.step_ms) as usize
    }

    /// The messages sent in the step starting at `t_ms` (ms since the run began).
    pub fn step(&mut self, t_ms: i64, epoch_ms: i64, out: &mut Vec<Sent>) {
        // Heartbeats due first: a viewer joining in this step sends its first 5 s from now.
        let slot = self.slot_of(t_ms);
        let due = std::mem::take(&mut self.wheel[slot]);
        let mut keep = Vec::with_capacity(due.len());
        for session in due {
            if self.viewers[session as usize].active {
                self.maybe_switch(session);
                self.send(session, "heartbeat", epoch_ms + t_ms, out);
                keep.push(session);
            }
        }
        self.wheel[slot] = keep;
        let dt = self.step_ms as f64 / 1000.0;
        let (joins, leaves) = self.rates(t_ms);
        self.join_debt += joins * dt;
        while self.join_debt >= 1.0 {
            self.join_debt -= 1.0;
            self.join(t_ms, epoch_ms, out);
        }
        self.leave_debt += leaves * dt;
        while self.leave_debt >= 1.0 && !self.active.is_empty() {
            self.leave_debt -= 1.0;
            self.leave(t_ms, epoch_ms, out);
        }
    }

    /// (joins per second, leaves per second) at `t_ms`.
    fn rates(&mut self, t_ms: i64) -> (f64, f64) {
        let t = t_ms as f64 / 1000.0;
        match self.spec.shape {
            Shape::Steady {
                viewers,
                churn_per_minute,
            } => {
                if t < 5.0 {
                    (viewers as f64 / 5.0, 0.0)
                } else {
                    let churn = viewers as f64 * churn_per_minute / 60.0;
                    (churn, churn)
                }
            }
            Shape::FlashCrowd { viewers, over_s } => {
                if t < over_s as f64 {
                    (viewers as f64 / over_s as f64, 0.0)
                } else {
                    (0.0, 0.0)
                }
            }
            Shape::MassExit {
                viewers,
                at_s,
                over_s,
            } => {
                if t < 5.0 {
                    (viewers as f64 / 5.0, 0.0)
                } else if t >= at_s as f64 && t < (at_s + over_s) as f64 {
                    if self.exit_order.is_empty() {
                        self.exit_order = self.active.clone();
                        self.rng.shuffle(&mut self.exit_order);
                    }
                    (0.0, viewers as f64 / over_s as f64)
                } else {
                    (0.0, 0.0)
                }
            }
        }
    }

    fn join(&mut self, t_ms: i64, epoch_ms: i64, out: &mut Vec<Sent>) {
        let session = self.viewers.len() as u32;
        let stream = session % self.spec.streams.max(1);
        let mut options = [0; MAX_DIMENSIONS];
        for (option, mix) in options.iter_mut().zip(&self.spec.dimensions) {
            *option = mix.pick(self.options_rng.f64());
        }
        self.viewers.push(Viewer {
            stream,
            seq: 0,
            active: true,
            slot: self.active.len(),
            options,
        });
        self.active.push(session);
        self.send(session, "start", epoch_ms + t_ms, out);
        let slot = self.slot_of(t_ms);
        self.wheel[slot].push(session);
    }

    fn leave(&mut self, t_ms: i64, epoch_ms: i64, out: &mut Vec<Sent>) {
        let session = match self.spec.shape {
            Shape::MassExit { .. } => match self.exit_order.pop() {
                Some(session) => session,
                None => return,
            },
            _ => self.active[self.rng.usize(..self.active.len())],
        };
        let viewer = &mut self.viewers[session as usize];
        if !viewer.active {
            return;
        }
        viewer.active = false;
        let slot = viewer.slot;
        self.active.swap_remove(slot);
        if let Some(&moved) = self.active.get(slot) {
            self.viewers[moved as usize].slot = slot;
        }
        let silent = !matches!(self.spec.shape, Shape::MassExit { .. })
            && self.rng.f64() < self.spec.silent_share;
        if !silent {
            self.send(session, "stop", epoch_ms + t_ms, out);
        }
    }

    /// With [`AudienceSpec::switch_share`], the viewer moves to the next option of the last
    /// dimension.
    fn maybe_switch(&mut self, session: u32) {
        let Some(last) = self.spec.dimensions.len().checked_sub(1) else {
            return;
        };
        if self.spec.switch_share > 0.0 && self.options_rng.f64() < self.spec.switch_share {
            let choices = self.spec.dimensions[last].options.len() as u8;
            let option = &mut self.viewers[session as usize].options[last];
            *option = (*option + 1) % choices.max(1);
        }
    }

    fn send(&mut self, session: u32, kind: &str, ts: i64, out: &mut Vec<Sent>) {
        let viewer = &mut self.viewers[session as usize];
        viewer.seq += 1;
        let mut fields = String::new();
        for (mix, &option) in self.spec.dimensions.iter().zip(&viewer.options) {
            if let Some(value) = mix.options[usize::from(option)].0 {
                fields.push_str(&format!(r#","{}":"{value}""#, mix.field));
            }
        }
        let body = format!(
            r#"{{"streamId":"{}","sessionId":"{}","type":"{kind}","ts":{ts},"seq":{}{fields}}}"#,
            stream_name(viewer.stream),
            session_name(session),
            viewer.seq
        );
        let sent = Sent {
            body,
            stream: viewer.stream,
            session,
            watching: kind != "stop",
        };
        if self.rng.f64() < self.spec.duplicate_share {
            out.push(sent.clone());
        }
        out.push(sent);
    }
}

/// The id of stream `index`.
pub fn stream_name(index: u32) -> String {
    format!("live-{index:05}")
}

/// The id of session `index`, shaped like the UUIDs players make.
pub fn session_name(index: u32) -> String {
    format!("7f1c2a9e-1d2b-4c55-9f0e-{index:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(shape: Shape, seconds: i64) -> (Players, Vec<Sent>) {
        let spec = AudienceSpec {
            shape,
            streams: 2,
            silent_share: 1.0 / 3.0,
            duplicate_share: 0.0,
            dimensions: Vec::new(),
            switch_share: 0.0,
        };
        run_spec(spec, seconds)
    }

    fn run_spec(spec: AudienceSpec, seconds: i64) -> (Players, Vec<Sent>) {
        let mut players = Players::new(spec, 10, 1);
        let mut out = Vec::new();
        for step in 0..seconds * 100 {
            players.step(step * 10, 0, &mut out);
        }
        (players, out)
    }

    #[test]
    fn a_steady_audience_heartbeats_every_five_seconds_and_churns() {
        let (players, out) = run(
            Shape::Steady {
                viewers: 1_000,
                churn_per_minute: 0.1,
            },
            65,
        );
        assert_eq!(players.watching(), 1_000);
        let starts = out.iter().filter(|s| s.body.contains("\"start\"")).count();
        assert_eq!(
            starts,
            1_000 + 100,
            "1,000 at first, 10 % in the next minute"
        );
        let stops = out.iter().filter(|s| !s.watching).count();
        assert!(
            (50..=85).contains(&stops),
            "two thirds of 100 leaves: {stops}"
        );
        // About 12 each: the first 5 s after joining, the last by 65 s.
        let beats = out.iter().filter(|s| s.body.contains("heartbeat")).count();
        assert!((11_700..12_100).contains(&beats), "{beats}");
    }

    #[test]
    fn a_mass_exit_stops_everyone() {
        let (players, out) = run(
            Shape::MassExit {
                viewers: 500,
                at_s: 10,
                over_s: 5,
            },
            20,
        );
        assert_eq!(players.watching(), 0);
        assert_eq!(out.iter().filter(|s| !s.watching).count(), 500);
    }

    #[test]
    fn dimensions_are_drawn_by_their_shares_switch_mid_stream_and_change_nothing_else() {
        let shape = Shape::Steady {
            viewers: 2_000,
            churn_per_minute: 0.1,
        };
        let plain = AudienceSpec {
            shape,
            streams: 2,
            silent_share: 1.0 / 3.0,
            duplicate_share: 0.01,
            dimensions: Vec::new(),
            switch_share: 0.0,
        };
        let cdn = DimensionMix {
            field: "cdn",
            options: vec![
                (Some("cloudfront"), 0.5),
                (Some("fastly"), 0.4),
                (None, 0.1),
            ],
        };
        let with = AudienceSpec {
            dimensions: vec![cdn],
            switch_share: 0.01,
            ..plain.clone()
        };
        let (_, without) = run_spec(plain, 30);
        let (_, sent) = run_spec(with, 30);
        assert_eq!(
            sent.len(),
            without.len(),
            "the same messages, with fields added"
        );
        for (a, b) in without.iter().zip(&sent) {
            assert_eq!(
                (a.stream, a.session, a.watching),
                (b.stream, b.session, b.watching)
            );
        }
        let starts: Vec<&Sent> = sent.iter().filter(|s| s.body.contains("start")).collect();
        let share = |needle: &str| {
            starts.iter().filter(|s| s.body.contains(needle)).count() as f64 / starts.len() as f64
        };
        assert!(
            (0.45..0.55).contains(&share("cloudfront")),
            "{}",
            share("cloudfront")
        );
        assert!(
            (0.35..0.45).contains(&share("fastly")),
            "{}",
            share("fastly")
        );
        assert!((0.07..0.13).contains(&(1.0 - share("\"cdn\""))), "none");
        // A player's heartbeats sometimes name another CDN than its start did.
        let mut first: std::collections::HashMap<u32, bool> = Default::default();
        let mut switched = 0;
        for s in &sent {
            let on_cloudfront = s.body.contains("cloudfront");
            if *first.entry(s.session).or_insert(on_cloudfront) != on_cloudfront {
                switched += 1;
            }
        }
        assert!(switched > 0, "no player switched CDN");
    }
}
