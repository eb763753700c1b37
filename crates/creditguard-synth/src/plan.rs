//! The population: who each learner is, which pattern (if any) they carry, and the few things
//! decided across learners (proxy check-in groups, pairs sharing a training-room PC).
//!
//! Everything here is drawn from per-learner (or per-group) random streams derived from the seed,
//! so a learner's plan does not depend on how many learners come before it.

use creditguard_contract::Platform;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::catalog::Catalog;
use crate::config::{Config, Pattern, Strength, StrengthMix};

/// A place learners work from: coarse geo (1e-4 degrees) and the UTC offset of its clocks.
pub(crate) struct City {
    pub name: &'static str,
    pub lat_e4: i32,
    pub lon_e4: i32,
    pub tz_min: i32,
}

pub(crate) const CITIES: [City; 12] = [
    City {
        name: "shanghai",
        lat_e4: 312_304,
        lon_e4: 1_214_737,
        tz_min: 480,
    },
    City {
        name: "beijing",
        lat_e4: 399_042,
        lon_e4: 1_164_074,
        tz_min: 480,
    },
    City {
        name: "shenzhen",
        lat_e4: 225_431,
        lon_e4: 1_140_579,
        tz_min: 480,
    },
    City {
        name: "chengdu",
        lat_e4: 305_728,
        lon_e4: 1_040_668,
        tz_min: 480,
    },
    City {
        name: "wuhan",
        lat_e4: 305_928,
        lon_e4: 1_143_055,
        tz_min: 480,
    },
    City {
        name: "singapore",
        lat_e4: 13_521,
        lon_e4: 1_038_198,
        tz_min: 480,
    },
    City {
        name: "bangalore",
        lat_e4: 129_716,
        lon_e4: 775_946,
        tz_min: 330,
    },
    City {
        name: "frankfurt",
        lat_e4: 501_109,
        lon_e4: 86_821,
        tz_min: 60,
    },
    City {
        name: "london",
        lat_e4: 515_074,
        lon_e4: -1_278,
        tz_min: 0,
    },
    City {
        name: "newyork",
        lat_e4: 407_128,
        lon_e4: -740_060,
        tz_min: -300,
    },
    City {
        name: "tokyo",
        lat_e4: 356_762,
        lon_e4: 1_396_503,
        tz_min: 540,
    },
    City {
        name: "saopaulo",
        lat_e4: -235_505,
        lon_e4: -466_333,
        tz_min: -180,
    },
];

/// Org unit k sits in `CITIES[ORG_CITY[k % len]]`: mostly China, some elsewhere.
const ORG_CITY: [usize; 16] = [0, 1, 2, 3, 0, 4, 5, 6, 1, 7, 8, 2, 9, 10, 0, 11];

/// Great-circle distance in km.
pub(crate) fn distance_km(a: &City, b: &City) -> f64 {
    let (la1, lo1) = (f64::from(a.lat_e4) / 1e4, f64::from(a.lon_e4) / 1e4);
    let (la2, lo2) = (f64::from(b.lat_e4) / 1e4, f64::from(b.lon_e4) / 1e4);
    let (p1, p2) = (la1.to_radians(), la2.to_radians());
    let dp = (la2 - la1).to_radians();
    let dl = (lo2 - lo1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// When a learner usually studies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chrono {
    /// Lunch break, afternoon and evening.
    Office,
    /// On the phone during the commute, plus lunch.
    Commuter,
    /// Late evening into the night.
    NightOwl,
}

pub(crate) struct UserSpec {
    pub idx: u32,
    pub user_id: String,
    pub org: u32,
    pub city: usize,
    pub chrono: Chrono,
    pub has_phone: bool,
    pub pc_platform: Platform,
    pub phone_platform: Platform,
    /// Base probability of studying on a working day.
    pub diligence: f64,
    /// Probability of answering a quiz question right.
    pub ability: f64,
    /// Typical seconds per quiz question.
    pub quiz_pace_s: f64,
    /// Preferred playback speed, per mille (1000 = 1×; at most 2000).
    pub pref_rate_pm: u32,
    pub pattern: Option<(Pattern, Strength)>,
    /// Period days (0-based) of the planted episodes.
    pub episode_days: Vec<u32>,
    /// Pair number when this honest learner shares a training-room PC with another.
    pub shared_pc: Option<u32>,
    /// For a proxy-learning cheater: the colleague (user index) who does the courses.
    pub proxy_helper: Option<u32>,
    /// This honest learner does a colleague's courses on their own laptop (and studies on it
    /// every evening).
    pub helps: bool,
    /// (group index, position in the group) for a proxy check-in group.
    pub group: Option<(u32, u32)>,
    /// Index in [`Plan::households`] of this honest learner's household (`lookalikes`).
    pub household: Option<u32>,
    /// (first day, last day, city) of an honest business trip.
    pub trip: Option<(u32, u32, usize)>,
    /// (day, course index) of an honest classroom session.
    pub classroom: Option<(u32, usize)>,
}

/// With `lookalikes`, makes the honest neighbours 2k and 2k+1 a [`Household`] now and then (its
/// own random stream, so that the rest of the plan does not change with it).
fn household(cfg: &Config, users: &mut [UserSpec], households: &mut Vec<Household>, k: usize) {
    let mut rng = rng_for(cfg.seed, Stream::Household, k as u64);
    if !cfg.lookalikes || cfg.days < 8 || !rng.random_bool(0.05) {
        return;
    }
    let (a, b) = (2 * k, 2 * k + 1);
    let strength = match cfg.strength {
        StrengthMix::Blatant => Strength::Blatant,
        StrengthMix::Subtle => Strength::Subtle,
        StrengthMix::Mixed if rng.random_bool(0.5) => Strength::Blatant,
        StrengthMix::Mixed => Strength::Subtle,
    };
    let first = rng.random_range(1..cfg.days - 6);
    let days = match strength {
        Strength::Blatant => vec![first, first + 1, first + 2, first + 4],
        Strength::Subtle => vec![first, first + rng.random_range(1..=3)],
    };
    // One home (and one site: the generator keeps a learner's city that of their org unit); no
    // trips, and no classroom on those days.
    users[b].org = users[a].org;
    users[b].city = users[a].city;
    let h = households.len() as u32;
    for u in [a, b] {
        users[u].household = Some(h);
        users[u].trip = None;
        if users[u].classroom.is_some_and(|(d, _)| days.contains(&d)) {
            users[u].classroom = None;
        }
    }
    let members = if rng.random_bool(0.5) { [a, b] } else { [b, a] };
    households.push(Household {
        members: members.map(|m| m as u32),
        strength,
        days,
    });
}

/// A proxy check-in: one learner's phone signs in the whole group to a classroom session.
pub(crate) struct Group {
    pub members: Vec<u32>,
    pub strength: Strength,
    pub day: u32,
    pub course: usize,
    /// Class start, minutes after local midnight.
    pub start_min: i64,
    /// Seconds between two consecutive check-ins on the shared phone.
    pub gap_s: i64,
    /// Mobile address of the shared phone that day.
    pub ip: u32,
}

/// Two honest learners living together (spouses, flatmates; `lookalikes`): one home address,
/// and on a few evenings they hand the family tablet back and forth (A, B, A…), each doing
/// their own courses, each also on their own laptop at home that evening. Blatant: four
/// evenings in five days, four or five turns each; subtle: two evenings, three turns each.
pub(crate) struct Household {
    /// The member who takes the first turn, then the other.
    pub members: [u32; 2],
    pub strength: Strength,
    pub days: Vec<u32>,
}

pub(crate) struct Plan {
    pub cfg: Config,
    pub catalog: Catalog,
    pub users: Vec<UserSpec>,
    pub groups: Vec<Group>,
    pub households: Vec<Household>,
}

/// Independent random streams derived from the seed.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Catalog = 1,
    Plan = 2,
    Group = 3,
    Behaviour = 4,
    Faults = 5,
    Device = 6,
    Pair = 7,
    Household = 8,
    Roster = 9,
}

/// SplitMix64 finaliser: spreads (seed, stream, index) into a well-mixed 64-bit value.
pub(crate) fn mix(seed: u64, stream: Stream, idx: u64) -> u64 {
    let mut z = seed
        ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ idx.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn rng_for(seed: u64, stream: Stream, idx: u64) -> StdRng {
    StdRng::seed_from_u64(mix(seed, stream, idx))
}

impl Plan {
    pub(crate) fn new(cfg: Config) -> Plan {
        let catalog = Catalog::generate(&mut rng_for(cfg.seed, Stream::Catalog, 0));
        let classrooms = catalog.classroom();
        let days = cfg.days;
        let mut users: Vec<UserSpec> = (0..cfg.users)
            .map(|i| draw_user(&cfg, i, &classrooms))
            .collect();

        // Proxy check-in groups: the shared-device learners, in user order, chunked into groups.
        let shared: Vec<u32> = users
            .iter()
            .filter(|u| matches!(u.pattern, Some((Pattern::SharedDevice, _))))
            .map(|u| u.idx)
            .collect();
        let mut groups: Vec<Group> = Vec::new();
        let mut i = 0;
        while i < shared.len() {
            let g = groups.len() as u32;
            let mut rng = rng_for(cfg.seed, Stream::Group, u64::from(g));
            let strength = users[shared[i] as usize]
                .pattern
                .map(|p| p.1)
                .unwrap_or(Strength::Blatant);
            let size = match strength {
                Strength::Blatant => rng.random_range(5..=8usize),
                Strength::Subtle => 3,
            };
            let mut members: Vec<u32> = shared[i..(i + size).min(shared.len())].to_vec();
            i += members.len();
            if members.len() < 3 {
                // Too few left for a group: fold them into the previous one, or make them honest.
                if let Some(prev) = groups.last_mut() {
                    prev.members.append(&mut members);
                } else {
                    for m in members {
                        users[m as usize].pattern = None;
                        users[m as usize].episode_days.clear();
                    }
                }
                continue;
            }
            // A blatant group cut short by the end of the list is no longer blatant.
            let strength = if members.len() < 5 && cfg.strength == StrengthMix::Mixed {
                Strength::Subtle
            } else {
                strength
            };
            groups.push(Group {
                members,
                strength,
                day: rng.random_range(1..days - 1),
                course: classrooms[rng.random_range(0..classrooms.len())],
                start_min: rng.random_range(18..=28i64) * 30,
                gap_s: rng.random_range(15..=60),
                ip: mobile_ip(&mut rng),
            });
        }
        for (g, group) in groups.iter().enumerate() {
            let owner = group.members[0] as usize;
            let (org, city) = (users[owner].org, users[owner].city);
            users[owner].has_phone = true;
            for (pos, &m) in group.members.iter().enumerate() {
                let u = &mut users[m as usize];
                // A team sits together: same org unit and site as the phone's owner.
                u.org = org;
                u.city = city;
                u.group = Some((g as u32, pos as u32));
                u.pattern = Some((Pattern::SharedDevice, group.strength));
                u.episode_days = vec![group.day];
                if u.classroom.is_some_and(|(d, _)| d == group.day) {
                    u.classroom = None;
                }
            }
        }

        let mut households = Vec::new();
        // Neighbours 2k and 2k+1, both honest, sometimes share a training-room PC (so a device
        // never sees more than two accounts). Decided per pair, so that a learner's plan never
        // depends on learners further down the list.
        for k in 0..users.len() / 2 {
            let (a, b) = (2 * k, 2 * k + 1);
            // A proxy learner's helper: the other of the pair, a colleague (who may cheat in
            // ways of their own).
            let proxy = |u: &UserSpec| {
                matches!(
                    u.pattern,
                    Some((Pattern::ProxyLearning | Pattern::ProxyAlternating, _))
                )
            };
            let helped = match (proxy(&users[a]), proxy(&users[b])) {
                (false, true) => Some((a, b)),
                (true, false) => Some((b, a)),
                _ => None,
            };
            if let Some((helper, learner)) = helped {
                users[learner].org = users[helper].org;
                users[learner].city = users[helper].city;
                users[learner].proxy_helper = Some(helper as u32);
                users[helper].helps = true;
                // The helper's laptop is theirs alone on the proxy's evenings: no episode of the
                // helper's own then (the hand-back also needs them at it in between).
                let busy = users[helper].episode_days.clone();
                let first = users[learner].episode_days.first().copied().unwrap_or(1);
                if matches!(users[learner].pattern, Some((Pattern::ProxyAlternating, _))) {
                    let free = |a: &u32| !busy.contains(a) && !busy.contains(&(a + 1));
                    if let Some(a) = (first..days - 2).chain(1..first).find(free) {
                        users[learner].episode_days = vec![a, a + 1];
                    }
                } else if let Some(a) = (first..days - 1)
                    .chain(1..first)
                    .find(|a| !busy.contains(a))
                {
                    users[learner].episode_days = vec![a];
                }
                continue;
            }
            let mut rng = rng_for(cfg.seed, Stream::Pair, k as u64);
            if users[a].pattern.is_none() && users[b].pattern.is_none() && rng.random_bool(0.12) {
                // Same room: same org unit and site; no trips, the PC stays in the room.
                users[b].org = users[a].org;
                users[b].city = users[a].city;
                for u in [a, b] {
                    users[u].shared_pc = Some(k as u32);
                    users[u].trip = None;
                }
            } else if users[a].pattern.is_none() && users[b].pattern.is_none() {
                household(&cfg, &mut users, &mut households, k);
            }
        }
        Plan {
            cfg,
            catalog,
            users,
            groups,
            households,
        }
    }

    pub(crate) fn org_name(&self, org: u32) -> String {
        let city = ORG_CITY[org as usize % ORG_CITY.len()];
        format!("ou{:02}-{}", org, CITIES[city].name)
    }

    /// Office egress address of an org unit: everyone at the office shares it.
    pub(crate) fn office_ip(org: u32) -> u32 {
        u32::from_be_bytes([203, 0, 113, 0]) | (org % 254 + 1)
    }
}

pub(crate) fn mobile_ip(rng: &mut StdRng) -> u32 {
    // Carrier-grade NAT space (100.64.0.0/10): phones change address from session to session.
    0x6440_0000 | (rng.random::<u32>() & 0x003F_FFFF)
}

fn draw_user(cfg: &Config, i: u32, classrooms: &[usize]) -> UserSpec {
    let mut rng = rng_for(cfg.seed, Stream::Plan, u64::from(i));
    let org = rng.random_range(0..cfg.org_units);
    let org_city = ORG_CITY[org as usize % ORG_CITY.len()];
    // A few work remotely from another site.
    let city = if rng.random_bool(0.1) {
        rng.random_range(0..CITIES.len())
    } else {
        org_city
    };
    let chrono = match rng.random_range(0..100) {
        0..55 => Chrono::Office,
        55..80 => Chrono::Commuter,
        _ => Chrono::NightOwl,
    };
    let has_phone = chrono == Chrono::Commuter || rng.random_bool(0.6);
    let pc_platform = if rng.random_bool(0.8) {
        Platform::Web
    } else {
        Platform::Desktop
    };
    let phone_platform =
        [Platform::Android, Platform::Ios, Platform::MiniProgram][rng.random_range(0..3)];
    let pref_rate_pm = match rng.random_range(0..100) {
        0..65 => 1000,
        65..80 => 1250,
        80..92 => 1500,
        92..97 => 1750,
        _ => 2000,
    };
    let mut pattern = None;
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for p in Pattern::ALL {
        acc += cfg.share(p);
        if u < acc {
            let strength = match cfg.strength {
                StrengthMix::Blatant => Strength::Blatant,
                StrengthMix::Subtle => Strength::Subtle,
                StrengthMix::Mixed => {
                    if rng.random_bool(0.5) {
                        Strength::Blatant
                    } else {
                        Strength::Subtle
                    }
                }
            };
            pattern = Some((p, strength));
            break;
        }
    }
    let days = cfg.days;
    let episode_days = match pattern {
        None | Some((Pattern::SharedDevice, _)) => Vec::new(),
        // One evening: on a second the learner would be a regular user of the laptop.
        Some((Pattern::ProxyLearning, _)) => vec![rng.random_range(1..days - 1)],
        // Two evenings in a row, so that one batch of the jobs (and a day each side) sees both.
        Some((Pattern::ProxyAlternating, _)) => {
            let a = rng.random_range(1..days - 2);
            vec![a, a + 1]
        }
        // Bursts come late, against a baseline of ordinary days.
        Some((Pattern::CreditBurst, _)) => vec![rng.random_range((days * 3 / 5).max(2)..days)],
        Some((_, Strength::Subtle)) => vec![rng.random_range(1..days - 1)],
        Some((_, Strength::Blatant)) => {
            let a = rng.random_range(1..days - 1);
            let mut b = rng.random_range(1..days - 1);
            if b == a {
                b = if a + 1 < days - 1 { a + 1 } else { a - 1 };
            }
            let mut v = vec![a.min(b), a.max(b)];
            v.dedup();
            v
        }
    };
    let trip = if pattern.is_none() && rng.random_bool(0.06) {
        // Trips by train or plane to another site in the same time zone, 500–2000 km away.
        let here = &CITIES[city];
        let options: Vec<usize> = (0..CITIES.len())
            .filter(|&c| {
                let d = distance_km(here, &CITIES[c]);
                CITIES[c].tz_min == here.tz_min && (500.0..=2000.0).contains(&d)
            })
            .collect();
        if options.is_empty() {
            None
        } else {
            let first = rng.random_range(1..days - 1);
            let last = (first + rng.random_range(0..3)).min(days - 1);
            Some((first, last, options[rng.random_range(0..options.len())]))
        }
    } else {
        None
    };
    let classroom = if rng.random_bool(0.25) {
        let d = rng.random_range(0..days);
        (!episode_days.contains(&d)).then(|| (d, classrooms[rng.random_range(0..classrooms.len())]))
    } else {
        None
    };
    UserSpec {
        idx: i,
        user_id: format!("u{i:05}"),
        org,
        city,
        chrono,
        has_phone,
        pc_platform,
        phone_platform,
        diligence: rng.random_range(0.35..0.85),
        ability: rng.random_range(0.62..0.97),
        quiz_pace_s: rng.random_range(8.0..30.0),
        pref_rate_pm,
        pattern,
        episode_days,
        shared_pc: None,
        proxy_helper: None,
        helps: false,
        group: None,
        household: None,
        trip,
        classroom,
    }
}
