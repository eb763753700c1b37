//! Pseudonyms for the identifying fields of an event, applied at ingest (file and Kafka alike)
//! before anything is written to the lake.
//!
//! - `user_id`, `device_id`: `k<key id>:<HMAC-SHA-256 of the value, 80 bits in hex>`, e.g.
//!   `k3fa9c1:5d41402abc4b2a76b971`. The same value gives the same pseudonym under one key, so
//!   every join, count and comparison the detectors make holds; the key id says which key made
//!   it, so keys can rotate.
//! - `ip`: only its network is kept, as `k<key id>:net:<HMAC of the /24 (IPv4) or /48 (IPv6)
//!   network>`; an address that does not parse is dropped. "Same network" still compares equal.
//! - `geo_lat` / `geo_lon`: rounded to 0.1° (≈ 11 km of latitude, less of longitude).
//!
//! Each field kind has its own HMAC domain, so a user id and a device id with the same text get
//! different pseudonyms. No IO here: the key's bytes come from the caller.
//!
//! ```
//! use creditguard_contract::privacy::Pseudonymiser;
//! let p = Pseudonymiser::new(&[7u8; 32]);
//! let user = p.user("u-0001");
//! assert!(user.starts_with(p.key_id()) && user.len() == 7 + 1 + 20);
//! assert_eq!(p.network("10.1.2.3"), p.network("10.1.2.200"));
//! assert_ne!(p.network("10.1.2.3"), p.network("10.1.3.3"));
//! assert_eq!(p.network("not an address"), None);
//! ```

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::event::Event;

/// Hex digits of a pseudonym (80 bits: collisions among 10⁹ distinct values ≈ 4 × 10⁻⁷).
const DIGITS: usize = 20;
/// Smallest accepted key (bytes).
pub const MIN_KEY_BYTES: usize = 32;

/// Turns identifiers into keyed pseudonyms; cheap to clone.
#[derive(Clone)]
pub struct Pseudonymiser {
    key_id: String,
    /// The keyed MAC state, cloned per value (saves hashing the key's two blocks each time).
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Pseudonymiser {
    // Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymiser")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The domains of HMAC input, one per kind of identifier.
#[derive(Clone, Copy)]
enum Domain {
    User,
    Device,
    Network,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::User => b"user\0",
            Domain::Device => b"device\0",
            Domain::Network => b"network\0",
        }
    }
}

impl Pseudonymiser {
    /// A pseudonymiser for `key` (any length; [`parse_key`] insists on at least 32 bytes).
    pub fn new(key: &[u8]) -> Pseudonymiser {
        Pseudonymiser {
            key_id: key_id(key),
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// `k` and six hex digits derived from the key: the prefix of every pseudonym it makes.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn mac(&self, domain: Domain, value: &str) -> String {
        let mut m = self.mac.clone();
        m.update(domain.tag());
        m.update(value.as_bytes());
        let digest = m.finalize().into_bytes();
        let mut out = String::with_capacity(self.key_id.len() + 5 + DIGITS);
        out.push_str(&self.key_id);
        out.push(':');
        if matches!(domain, Domain::Network) {
            out.push_str("net:");
        }
        push_hex(&mut out, &digest[..DIGITS / 2]);
        out
    }

    /// The pseudonym of a user id.
    pub fn user(&self, user_id: &str) -> String {
        self.mac(Domain::User, user_id)
    }

    /// The pseudonym of a device id.
    pub fn device(&self, device_id: &str) -> String {
        self.mac(Domain::Device, device_id)
    }

    /// The pseudonym of an address's network (see [`network_of`]); `None` if it does not parse.
    pub fn network(&self, ip: &str) -> Option<String> {
        network_of(ip).map(|net| self.mac(Domain::Network, &net))
    }

    /// Replaces the event's identifying fields by their pseudonyms and coarsens its place.
    pub fn apply(&self, e: &mut Event<'_>) {
        e.user_id = Cow::Owned(self.user(&e.user_id));
        if let Some(d) = &e.device_id {
            e.device_id = Some(Cow::Owned(self.device(d)));
        }
        if let Some(ip) = &e.ip {
            e.ip = self.network(ip).map(Cow::Owned);
        }
        e.geo_lat = e.geo_lat.map(coarse_degrees);
        e.geo_lon = e.geo_lon.map(coarse_degrees);
    }
}

/// Applies `privacy` to `e` when it is on (uncached; see [`Protector`] for ingest).
pub fn protect(privacy: Option<&Pseudonymiser>, e: &mut Event<'_>) {
    if let Some(p) = privacy {
        p.apply(e);
    }
}

/// [`Pseudonymiser::apply`] with a memory of recent values: the one step both ingest paths (file
/// and Kafka) take before an event is buffered for the lake. A learner's events repeat the same
/// user, device and address, so most of them cost a lookup instead of three HMACs.
#[derive(Clone)]
pub struct Protector {
    p: Pseudonymiser,
    /// `k<key id>:`, the start of every pseudonym `p` makes.
    prefix: String,
    users: Memo,
    devices: Memo,
    networks: Memo,
    /// The pseudonyms of the event being protected (user, device, network): the event borrows
    /// them until the next one.
    scratch: [String; 3],
}

/// Input value → pseudonym: a direct-mapped table of 2¹⁵ slots of one cache line (64 bytes;
/// 2 MB), each holding a whole input (up to 38 bytes; longer ones are not remembered) and its
/// pseudonym inline without the `k<key id>:` prefix they all share, so a lookup touches one
/// cache line instead of chasing pointers through a hash map. A slot is trusted only when its
/// stored input equals the value byte for byte.
#[derive(Clone)]
struct Memo {
    slots: Vec<Slot>,
}

const SLOTS: usize = 1 << 15;
const MAX_IN: usize = 38;
/// Longest pseudonym after its prefix: `net:` + 20.
const MAX_OUT: usize = 24;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    in_len: u8,
    /// 0: no pseudonym (an address that does not parse); else its length after the prefix + 1.
    out_len: u8,
    input: [u8; MAX_IN],
    out: [u8; MAX_OUT],
}

const EMPTY: Slot = Slot {
    in_len: u8::MAX,
    out_len: 0,
    input: [0; MAX_IN],
    out: [0; MAX_OUT],
};

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").finish_non_exhaustive()
    }
}

impl Default for Memo {
    fn default() -> Self {
        Memo {
            slots: vec![EMPTY; SLOTS],
        }
    }
}

impl Memo {
    /// [`Memo::get_into`] into a new `String` (the tests' view of the memo).
    #[cfg(test)]
    fn get(
        &mut self,
        value: &str,
        prefix: &str,
        make: impl FnOnce(&str) -> Option<String>,
    ) -> Option<String> {
        let mut out = String::new();
        self.get_into(value, prefix, make, &mut out).then_some(out)
    }

    /// The pseudonym of `value` written into `out` (cleared first; `false` and `out` empty when
    /// there is none): remembered, or made by `make` (whose answers all start with `prefix`,
    /// `k<key id>:`) and remembered. `out` is the caller's buffer, reused event after event, so
    /// a remembered pseudonym costs no allocation.
    fn get_into(
        &mut self,
        value: &str,
        prefix: &str,
        make: impl FnOnce(&str) -> Option<String>,
        out: &mut String,
    ) -> bool {
        out.clear();
        let v = value.as_bytes();
        if v.len() > MAX_IN {
            return make(value).map(|p| out.push_str(&p)).is_some();
        }
        let i = (xxhash_rust::xxh3::xxh3_64(v) as usize) & (SLOTS - 1);
        let slot = &mut self.slots[i];
        if usize::from(slot.in_len) == v.len() && &slot.input[..v.len()] == v {
            return match slot.out_len {
                0 => false,
                n => {
                    let rest = std::str::from_utf8(&slot.out[..usize::from(n - 1)])
                        .expect("stored from a str");
                    out.push_str(prefix);
                    out.push_str(rest);
                    true
                }
            };
        }
        let Some(made) = make(value) else {
            // No pseudonym (an address that does not parse): remembered as such.
            (slot.in_len, slot.out_len) = (v.len() as u8, 0);
            slot.input[..v.len()].copy_from_slice(v);
            return false;
        };
        out.push_str(&made);
        if let Some(rest) = made.strip_prefix(prefix).filter(|r| r.len() <= MAX_OUT) {
            (slot.in_len, slot.out_len) = (v.len() as u8, rest.len() as u8 + 1);
            slot.input[..v.len()].copy_from_slice(v);
            slot.out[..rest.len()].copy_from_slice(rest.as_bytes());
        }
        true
    }
}

impl fmt::Debug for Protector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protector")
            .field("pseudonymiser", &self.p)
            .finish_non_exhaustive()
    }
}

impl Protector {
    pub fn new(p: Pseudonymiser) -> Protector {
        Protector {
            prefix: format!("{}:", p.key_id()),
            p,
            users: Memo::default(),
            devices: Memo::default(),
            networks: Memo::default(),
            scratch: Default::default(),
        }
    }

    /// The pseudonymiser it applies.
    pub fn pseudonymiser(&self) -> &Pseudonymiser {
        &self.p
    }

    /// Replaces the event's identifying fields as [`Pseudonymiser::apply`] does. The event
    /// borrows its pseudonyms from this protector until the next call: a remembered pseudonym
    /// costs neither an HMAC nor an allocation.
    pub fn apply<'e>(&'e mut self, e: &mut Event<'e>) {
        let Protector {
            p,
            prefix,
            users,
            devices,
            networks,
            scratch: [user, device, network],
        } = self;
        users.get_into(&e.user_id, prefix, |u| Some(p.user(u)), user);
        e.user_id = Cow::Borrowed(user.as_str());
        if let Some(d) = &e.device_id {
            let found = devices.get_into(d, prefix, |d| Some(p.device(d)), device);
            e.device_id = found.then_some(Cow::Borrowed(device.as_str()));
        }
        if let Some(ip) = &e.ip {
            let found = networks.get_into(ip, prefix, |ip| p.network(ip), network);
            e.ip = found.then_some(Cow::Borrowed(network.as_str()));
        }
        e.geo_lat = e.geo_lat.map(coarse_degrees);
        e.geo_lon = e.geo_lon.map(coarse_degrees);
    }
}

/// An employee as the roster names them: what re-identification shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The real user id (the roster's `user_id`).
    pub employee_id: String,
    /// The roster's `name` column, when it has one.
    pub name: Option<String>,
}

/// Pseudonym → employee, computed in memory from the roster's real ids with the key; never
/// stored. Where it is used: the results topic with `[results] identify = true`, and the review
/// app for learners inside a reviewer's scope.
#[derive(Clone, Default)]
pub struct Identities {
    by_pseudonym: std::collections::HashMap<String, Identity>,
}

impl fmt::Debug for Identities {
    // Never the people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("people", &self.by_pseudonym.len())
            .finish()
    }
}

impl Identities {
    /// The map of `people` under `p` (`None`: pseudonymisation off, the lake holds real ids).
    pub fn new(p: Option<&Pseudonymiser>, people: impl IntoIterator<Item = Identity>) -> Self {
        let by_pseudonym = people
            .into_iter()
            .map(|i| {
                let stored = p.map_or_else(|| i.employee_id.clone(), |p| p.user(&i.employee_id));
                (stored, i)
            })
            .collect();
        Identities { by_pseudonym }
    }

    /// The employee behind a stored user id, if the roster has them.
    pub fn get(&self, stored_user_id: &str) -> Option<&Identity> {
        self.by_pseudonym.get(stored_user_id)
    }

    pub fn len(&self) -> usize {
        self.by_pseudonym.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pseudonym.is_empty()
    }
}

/// From (stored user id, employee) pairs.
impl FromIterator<(String, Identity)> for Identities {
    fn from_iter<I: IntoIterator<Item = (String, Identity)>>(pairs: I) -> Self {
        Identities {
            by_pseudonym: pairs.into_iter().collect(),
        }
    }
}

fn key_id(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"creditguard key id\0");
    h.update(key);
    let d = h.finalize();
    let mut s = String::from("k");
    push_hex(&mut s, &d[..3]);
    s
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// A coordinate rounded to 0.1° (about 11 km): places for travel speed, not addresses.
pub fn coarse_degrees(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The network of an address as text: `a.b.c.0/24` for IPv4, `x:y:z::/48` for IPv6; `None`
/// when `ip` is not an address.
pub fn network_of(ip: &str) -> Option<String> {
    let ip: std::net::IpAddr = ip.trim().parse().ok()?;
    Some(match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    })
}

/// Whether `s` is a network pseudonym made by [`Pseudonymiser::network`].
pub fn is_network_pseudonym(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7 + 5 + DIGITS
        && b[0] == b'k'
        && b[1..7].iter().all(u8::is_ascii_hexdigit)
        && &b[7..12] == b":net:"
        && b[12..].iter().all(u8::is_ascii_hexdigit)
}

/// What the detectors compare as "the same network": the network of a raw address, or a network
/// pseudonym as it is (ingest already reduced it to its network). `None`: unknown.
pub fn network_key(ip: &str) -> Option<Cow<'_, str>> {
    if is_network_pseudonym(ip) {
        Some(Cow::Borrowed(ip))
    } else {
        network_of(ip).map(Cow::Owned)
    }
}

/// Parses a key as stored in a key file or an environment variable: hex digits (whitespace
/// around them ignored), at least [`MIN_KEY_BYTES`] bytes. The error says what is wrong, never
/// what the key is.
pub fn parse_key(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the key is empty".to_string());
    }
    if t.len() % 2 != 0 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the key must be hex digits ({} of them for {MIN_KEY_BYTES} bytes; `creditguard keygen` makes one)",
            MIN_KEY_BYTES * 2
        ));
    }
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("checked hex"))
        .collect();
    if bytes.len() < MIN_KEY_BYTES {
        return Err(format!(
            "the key is {} bytes, at least {MIN_KEY_BYTES} are needed",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// A key as the text of a key file: hex, one line.
pub fn format_key(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len() * 2 + 1);
    push_hex(&mut s, key);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_separated_by_kind() {
        let a = Pseudonymiser::new(&[1u8; 32]);
        let b = Pseudonymiser::new(&[2u8; 32]);
        assert_eq!(a.user("u1"), a.user("u1"));
        assert_ne!(a.user("u1"), a.user("u2"));
        assert_ne!(a.user("u1"), b.user("u1"));
        assert_ne!(a.user("d1"), a.device("d1"));
        assert_ne!(a.key_id(), b.key_id());
        let p = a.user("u1");
        assert!(p.starts_with(&format!("{}:", a.key_id())), "{p}");
        assert_eq!(p.len(), 28);
        assert!(!p.contains("u1"));
        // RFC 4231 test vector 2 (key "Jefe"), to pin the construction: HMAC-SHA-256 over the
        // domain tag and the value.
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want ");
        m.update(b"for nothing?");
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn networks_keep_only_the_prefix() {
        let p = Pseudonymiser::new(&[9u8; 32]);
        assert_eq!(
            network_of("192.168.7.42").as_deref(),
            Some("192.168.7.0/24")
        );
        assert_eq!(
            network_of("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::/48")
        );
        assert_eq!(p.network("192.168.7.42"), p.network("192.168.7.1"));
        assert_ne!(p.network("192.168.7.42"), p.network("192.168.8.42"));
        assert_eq!(
            p.network("2001:db8:abcd:12::1"),
            p.network("2001:db8:abcd:ffff::9")
        );
        assert_ne!(
            p.network("2001:db8:abcd:12::1"),
            p.network("2001:db8:abce:12::1")
        );
        let n = p.network("10.0.0.1").unwrap();
        assert!(is_network_pseudonym(&n), "{n}");
        assert!(!is_network_pseudonym(&p.user("10.0.0.1")));
        assert_eq!(network_key(&n).as_deref(), Some(n.as_str()));
        assert_eq!(network_key("10.0.0.1").as_deref(), Some("10.0.0.0/24"));
        assert_eq!(network_key("garbage"), None);
        assert_eq!(p.network("10.0.0"), None);
    }

    #[test]
    fn apply_replaces_every_identifier_and_coarsens_the_place() {
        let line = br#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"alice","session_id":"s1","device_id":"phone-7","ip":"203.0.113.77","geo_lat":31.2304,"geo_lon":121.4737}"#;
        let mut e = crate::parse_event(line).unwrap();
        let p = Pseudonymiser::new(&[3u8; 32]);
        protect(Some(&p), &mut e);
        assert_eq!(e.user_id, p.user("alice"));
        assert_eq!(e.device_id.as_deref(), Some(p.device("phone-7").as_str()));
        assert_eq!(e.ip.as_deref(), p.network("203.0.113.1").as_deref());
        assert_eq!((e.geo_lat, e.geo_lon), (Some(31.2), Some(121.5)));
        // What is not identifying is untouched.
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.session_id.as_deref(), Some("s1"));
        // The memoised path gives the same, the second time from its memory.
        let mut q = Protector::new(p.clone());
        for _ in 0..2 {
            let mut m = crate::parse_event(line).unwrap();
            q.apply(&mut m);
            assert_eq!(m, e);
        }
        let mut raw = crate::parse_event(line).unwrap();
        protect(None, &mut raw);
        assert_eq!(raw.user_id, "alice");
        assert_eq!(raw.ip.as_deref(), Some("203.0.113.77"));
    }

    #[test]
    fn the_memo_gives_what_the_pseudonymiser_gives() {
        let p = Pseudonymiser::new(&[8u8; 32]);
        let pre = format!("{}:", p.key_id());
        let pre = pre.as_str();
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        let mut m = Memo::default();
        let long = "u".repeat(MAX_IN + 1);
        // More values than slots, twice over: every answer is the pseudonymiser's.
        for round in 0..2 {
            for i in 0..(SLOTS + 5000) {
                let v = format!("user-{i}");
                assert_eq!(
                    m.get(&v, pre, |u| Some(p.user(u))),
                    Some(p.user(&v)),
                    "{round} {v}"
                );
            }
            assert_eq!(m.get(&long, pre, |u| Some(p.user(u))), Some(p.user(&long)));
        }
        let mut n = Memo::default();
        for _ in 0..2 {
            assert_eq!(n.get("no address", pre, |ip| p.network(ip)), None);
            assert_eq!(
                n.get("10.0.0.1", pre, |ip| p.network(ip)),
                p.network("10.0.0.9")
            );
            // The longest input remembered, and a 36-character device id (a UUID).
            let at_limit = "x".repeat(MAX_IN);
            assert_eq!(
                n.get(&at_limit, pre, |d| Some(p.device(d))),
                Some(p.device(&at_limit))
            );
            let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
            assert_eq!(
                n.get(uuid, pre, |d| Some(p.device(d))),
                Some(p.device(uuid))
            );
        }
    }

    #[test]
    fn identities_map_stored_ids_back_to_the_roster() {
        let p = Pseudonymiser::new(&[4u8; 32]);
        let people = || {
            [("E-1", Some("Li Wei")), ("E-2", None)].map(|(id, name)| Identity {
                employee_id: id.to_string(),
                name: name.map(str::to_string),
            })
        };
        let ids = Identities::new(Some(&p), people());
        assert_eq!(ids.len(), 2);
        let li = ids.get(&p.user("E-1")).unwrap();
        assert_eq!(
            (li.employee_id.as_str(), li.name.as_deref()),
            ("E-1", Some("Li Wei"))
        );
        assert_eq!(ids.get(&p.user("E-2")).unwrap().name, None);
        // Only pseudonyms are keys: the real id, an unknown learner, another key's pseudonym.
        assert!(ids.get("E-1").is_none());
        assert!(ids.get(&p.user("E-3")).is_none());
        assert!(ids
            .get(&Pseudonymiser::new(&[5u8; 32]).user("E-1"))
            .is_none());
        assert!(!format!("{ids:?}").contains("E-1"));
        // Pseudonymisation off: the lake holds real ids.
        let raw = Identities::new(None, people());
        assert_eq!(raw.get("E-2").unwrap().employee_id, "E-2");
    }

    #[test]
    fn keys_parse_from_hex_and_errors_do_not_echo_them() {
        let k = format_key(&[0xab; 32]);
        assert_eq!(parse_key(&k).unwrap(), vec![0xab; 32]);
        let short = parse_key("abcd").unwrap_err();
        assert!(short.contains("2 bytes, at least 32"), "{short}");
        let bad = parse_key("my secret passphrase").unwrap_err();
        assert!(
            bad.contains("hex digits") && !bad.contains("passphrase"),
            "{bad}"
        );
        assert_eq!(parse_key("  \n").unwrap_err(), "the key is empty");
        assert!(format!("{:?}", Pseudonymiser::new(&[0xab; 32])).contains("key_id"));
        assert!(!format!("{:?}", Pseudonymiser::new(&[0xab; 32])).contains("ab, "));
    }
}
