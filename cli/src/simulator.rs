//! A player simulator: streams of players heartbeating into a queue, with jitter, churn (joins,
//! `stop`s and silent leaves), duplicated and reordered messages.

use std::time::Duration;
use tokio::time::Instant;

/// What the simulated audience does. The default is the five-player case: one stream, five
/// players, a heartbeat every 5 s, nobody leaving.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub streams: usize,
    /// Players per stream at the start.
    pub players: usize,
    pub heartbeat: Duration,
    /// Each heartbeat is sent up to this much early or late.
    pub jitter: Duration,
    /// New players per stream per minute.
    pub joins_per_minute: f64,
    /// Leaving players per stream per minute.
    pub leaves_per_minute: f64,
    /// Share of leaves that are silent (closed tab) rather than a `stop` event.
    pub silent_share: f64,
    /// Share of messages sent twice.
    pub duplicate_rate: f64,
    /// Share of messages held back past the session's next message (they arrive stale).
    pub reorder_rate: f64,
    pub seed: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            streams: 1,
            players: 5,
            heartbeat: Duration::from_secs(5),
            jitter: Duration::from_millis(250),
            joins_per_minute: 0.0,
            leaves_per_minute: 0.0,
            silent_share: 0.5,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            seed: 0x11ec_0c0d,
        }
    }
}

impl SimulatorConfig {
    /// The stream ids: `demo` for one stream, `demo-1` … `demo-N` for several.
    pub fn stream_ids(&self) -> Vec<String> {
        if self.streams == 1 {
            vec!["demo".to_owned()]
        } else {
            (1..=self.streams).map(|i| format!("demo-{i}")).collect()
        }
    }
}

struct Player {
    stream: String,
    session: String,
    next_at: Instant,
    started: bool,
    /// What it plays on, and from which CDN (a player switches CDN now and then, as real
    /// players fail over), for the breakdowns.
    device: &'static str,
    cdn: &'static str,
    /// Who watches (`userId`): one of [`VIEWER_IDS`], so viewers come back in new sessions
    /// and the unique viewers stay below the sessions started.
    user: String,
}

/// How many distinct viewers (`userId`s) the simulated players are drawn from.
const VIEWER_IDS: u32 = 100;

/// The devices simulated players play on (`smart-fridge` is listed by no breakdown: `other`).
const DEVICES: [&str; 5] = ["web", "ios", "android", "tv", "smart-fridge"];
/// The CDNs they play from.
const CDNS: [&str; 2] = ["cloudfront", "fastly"];

/// Runs the audience, handing each message body to `send`, until `shutdown` resolves.
pub async fn run(
    config: SimulatorConfig,
    send: impl Fn(String),
    shutdown: impl Future<Output = ()>,
) {
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let start = Instant::now();
    let mut players: Vec<Player> = Vec::new();
    for stream in config.stream_ids() {
        for _ in 0..config.players {
            // Spread first heartbeats over one interval, as real players join at random times.
            let offset = config.heartbeat.mul_f64(rng.f64());
            players.push(new_player(&mut rng, &stream, start + offset));
        }
    }
    let mut held: Vec<(Instant, String)> = Vec::new();
    let tick = Duration::from_millis(50);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let now = Instant::now();
        for player in players.iter_mut().filter(|p| p.next_at <= now) {
            let kind = if player.started { "heartbeat" } else { "start" };
            if player.started && rng.u8(..50) == 0 {
                player.cdn = if player.cdn == CDNS[0] {
                    CDNS[1]
                } else {
                    CDNS[0]
                };
            }
            player.started = true;
            emit(&config, &mut rng, &send, &mut held, body(player, kind));
            player.next_at = now + jittered(&config, &mut rng);
        }
        churn(&config, &mut rng, &send, &mut held, &mut players, tick);
        held.retain(|(release, body)| {
            let due = *release <= now;
            if due {
                send(body.clone());
            }
            !due
        });
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

fn churn(
    config: &SimulatorConfig,
    rng: &mut fastrand::Rng,
    send: &impl Fn(String),
    held: &mut Vec<(Instant, String)>,
    players: &mut Vec<Player>,
    tick: Duration,
) {
    let per_tick = tick.as_secs_f64() / 60.0;
    for stream in config.stream_ids() {
        if rng.f64() < config.joins_per_minute * per_tick {
            players.push(new_player(rng, &stream, Instant::now()));
        }
        if rng.f64() < config.leaves_per_minute * per_tick {
            let on_stream: Vec<usize> = (0..players.len())
                .filter(|&i| players[i].stream == stream)
                .collect();
            if !on_stream.is_empty() {
                let leaving = players.swap_remove(on_stream[rng.usize(..on_stream.len())]);
                if rng.f64() >= config.silent_share && leaving.started {
                    emit(config, rng, send, held, body(&leaving, "stop"));
                }
            }
        }
    }
}

fn emit(
    config: &SimulatorConfig,
    rng: &mut fastrand::Rng,
    send: &impl Fn(String),
    held: &mut Vec<(Instant, String)>,
    body: String,
) {
    if rng.f64() < config.duplicate_rate {
        send(body.clone());
    }
    if rng.f64() < config.reorder_rate {
        held.push((
            Instant::now() + config.heartbeat + Duration::from_secs(1),
            body,
        ));
    } else {
        send(body);
    }
}

fn jittered(config: &SimulatorConfig, rng: &mut fastrand::Rng) -> Duration {
    let jitter = config.jitter.as_secs_f64();
    let seconds = config.heartbeat.as_secs_f64() + jitter * (2.0 * rng.f64() - 1.0);
    Duration::from_secs_f64(seconds.max(0.1))
}

fn new_player(rng: &mut fastrand::Rng, stream: &str, next_at: Instant) -> Player {
    let session = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        rng.u32(..),
        rng.u16(..),
        rng.u16(..0x1000),
        0x8000 | rng.u16(..0x4000),
        rng.u64(..1 << 48)
    );
    Player {
        stream: stream.to_owned(),
        session,
        next_at,
        started: false,
        device: DEVICES[rng.usize(..DEVICES.len())],
        cdn: CDNS[rng.usize(..CDNS.len())],
        user: format!("viewer-{:03}", rng.u32(..VIEWER_IDS)),
    }
}

fn body(player: &Player, kind: &str) -> String {
    serde_json::json!({
        "streamId": player.stream,
        "sessionId": player.session,
        "type": kind,
        "ts": chrono::Utc::now().timestamp_millis(),
        "device": player.device,
        "cdn": player.cdn,
        "userId": player.user,
        "player": "livecount-simulator"
    })
    .to_string()
}
