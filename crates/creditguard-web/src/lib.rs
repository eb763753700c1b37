//! The review web app behind `creditguard serve`: HR reviewers work the case queue in a browser.
//!
//! - **Routes** (stable; tests and tools rely on them): `/login`, `/cases` (the queue),
//!   `/cases/{case_id}` (with `…/decision`, `…/assign`, `…/comment`, `…/appeal`,
//!   `…/timeline.svg`, `…/export`), `/learners/{user_id}`, `/overview`, `/audit`, `/accounts`,
//!   `/healthz`, `/readyz`, `/metrics`.
//! - **Access**: accounts with a role and org-unit scopes (`creditguard_review::accounts`);
//!   every page takes a [`auth::Viewer`] (no session: a redirect to `/login`) and every case,
//!   learner, timeline or export is loaded through the scope check of [`pages`] (outside the
//!   scope: 404, as if it did not exist). Forms carry a CSRF token; logins are rate-limited per
//!   account and per address; sessions expire.
//! - **Accountability**: viewing a case or learner, exporting, deciding and logging in are
//!   records of the hash-chained audit trail; so is each re-identification (the employee behind
//!   a pseudonym, shown to reviewers and leads inside their scope when [`Config::identities`]
//!   is set).
//! - **Output**: server-rendered HTML from compiled maud templates (every value escaped), no
//!   JavaScript, a strict Content-Security-Policy; English and Simplified Chinese.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let review = creditguard_review::Review::open("sqlite:///tmp/lake/review.sqlite?mode=rwc").await?;
//! let app = creditguard_web::router(review, creditguard_web::Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! creditguard_web::serve(listener, app, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use creditguard_review::Review;

pub mod auth;
pub mod error;
pub mod i18n;
pub mod lake;
pub mod metrics;
pub mod pages;

pub use error::{Result, WebError};
pub use lake::{write_decision_tables, BlockOn, LakeView, REVIEW_STREAM};

/// How people log in.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthMode {
    /// Username and password (Argon2id), session cookies.
    Password,
    /// A reverse proxy with single sign-on in front sets this header to the username; the
    /// account (role, scopes) must exist here. Only safe when nothing but the proxy can reach
    /// the listener.
    Proxy { header: HeaderName },
}

/// When repeated failed logins lock an account or an address.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockout {
    /// Failed logins of one username within `window` that lock it.
    pub account_failures: i64,
    /// Failed logins from one address within `window` that lock it.
    pub address_failures: i64,
    pub window: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            account_failures: 5,
            address_failures: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The app's settings.
pub struct Config {
    /// The lake (flags' evidence and explanations, credits, progress, timelines) and the course
    /// catalog. Without it the pages show what the review database holds.
    pub lake: Option<LakeView>,
    pub auth: AuthMode,
    /// How long a session lasts after login.
    pub session_ttl: Duration,
    /// `Secure` cookies (set when the app is served over TLS, directly or by a proxy).
    pub secure_cookies: bool,
    pub lockout: Lockout,
    /// Pseudonym → employee (from the roster, through the key; held in memory only): reviewers
    /// and leads see the employee behind each learner of their own scope on the case and
    /// learner pages, each time an audit record `reidentify`. `None`: pseudonyms only.
    pub identities: Option<Arc<creditguard_contract::privacy::Identities>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lake: None,
            auth: AuthMode::Password,
            session_ttl: Duration::from_secs(8 * 3600),
            secure_cookies: false,
            lockout: Lockout::default(),
            identities: None,
        }
    }
}

struct Inner {
    review: Review,
    config: Config,
    metrics: metrics::Metrics,
    /// Per-process secret for the CSRF tokens of proxy-authenticated users.
    secret: String,
    /// The rules of the queue's filter, read at most every [`RULES_TTL`].
    rules: std::sync::Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

/// How long the list of rules in the queue's filter is reused (new rules come with a score run).
const RULES_TTL: Duration = Duration::from_secs(60);

/// The shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(review: Review, config: Config) -> Result<AppState> {
        Ok(AppState(Arc::new(Inner {
            review,
            config,
            metrics: metrics::Metrics::default(),
            secret: auth::random_token()?,
            rules: std::sync::Mutex::new(None),
        })))
    }

    pub fn review(&self) -> &Review {
        &self.0.review
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    pub fn lake(&self) -> Option<&LakeView> {
        self.0.config.lake.as_ref()
    }

    /// The distinct rules of the cases' flags, cached for [`RULES_TTL`].
    pub async fn rules(&self) -> Result<Arc<Vec<String>>> {
        if let Some((at, rules)) = self.0.rules.lock().ok().and_then(|c| c.clone()) {
            if at.elapsed() < RULES_TTL {
                return Ok(rules);
            }
        }
        let rules = Arc::new(self.review().rules().await?);
        if let Ok(mut c) = self.0.rules.lock() {
            *c = Some((Instant::now(), rules.clone()));
        }
        Ok(rules)
    }

    pub(crate) fn secret(&self) -> &str {
        &self.0.secret
    }
}

/// The whole app. Panics only if the system has no random source.
pub fn router(review: Review, config: Config) -> Router {
    let state = AppState::new(review, config).expect("a random source for the app's secret");
    router_with(state)
}

/// The app over an existing state (tests keep a handle on it).
pub fn router_with(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(auth::login_page).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route("/lang", get(auth::set_lang))
        .route("/cases", get(pages::queue))
        .route("/cases/{case_id}", get(pages::case))
        .route("/cases/{case_id}/decision", post(pages::decide))
        .route("/cases/{case_id}/assign", post(pages::assign))
        .route("/cases/{case_id}/comment", post(pages::comment))
        .route("/cases/{case_id}/appeal", post(pages::appeal))
        .route("/cases/{case_id}/timeline.svg", get(pages::timeline))
        .route("/cases/{case_id}/export", get(pages::export))
        .route("/learners/{user_id}", get(pages::learner))
        .route("/overview", get(pages::overview))
        .route("/audit", get(pages::audit))
        .route("/accounts", get(pages::accounts))
        .route("/static/app.css", get(pages::stylesheet))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn not_found() -> WebError {
    WebError::NotFound
}

/// Metrics per route template, and the security headers of every response.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".into());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    state
        .metrics()
        .request(&route, resp.status().as_u16(), started.elapsed());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if route != "/static/app.css" {
        // Pages hold employee data: never kept by a browser or proxy cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.review().schema_versions().await {
        Ok(_) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "Not ready: the review database does not answer.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the review database does not answer\n",
            )
                .into_response()
        }
    }
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics().render(),
    )
        .into_response()
}
