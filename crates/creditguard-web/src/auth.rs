//! Who is asking: Argon2id passwords, session cookies, the login lockout, CSRF tokens, and the
//! [`Viewer`] extractor every page takes (no session: a redirect to `/login`), so no handler
//! can forget to authenticate.

use std::net::SocketAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use creditguard_review::{now_us, Account, Role};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, WebError};
use crate::i18n::Lang;
use crate::{AppState, AuthMode};

pub const SESSION_COOKIE: &str = "cg_session";
/// The login form's double-submit token (there is no session yet to hold one).
pub const LOGIN_COOKIE: &str = "cg_login";

/// An Argon2id hash (PHC string) of a password, with a random salt. Refuses passwords shorter
/// than 8 characters.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < 8 {
        return Err(WebError::BadRequest(
            "the password must have at least 8 characters".into(),
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| WebError::Internal(format!("random salt: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| WebError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| WebError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the stored hash (false for an unparsable hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of no account's password: verified against when the username is unknown, so a
/// failed login takes as long whether or not the account exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

/// 32 random bytes, hex.
pub fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| WebError::Internal(format!("random token: {e}")))?;
    Ok(hex(&b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What the database stores for a session token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, and `Secure` when served over TLS.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age_s: i64,
) -> HeaderValue {
    let secure = if state.config().secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("cg_invalid=1"))
}

/// The client address (the TCP peer), for the per-address lockout.
pub fn client_address(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The person making a request, with a live session (or the trusted proxy header).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub account: Account,
    /// The token every form must carry back.
    pub csrf: String,
    pub lang: Lang,
    /// The request's path and query, for the language toggle's way back.
    pub here: String,
}

impl Viewer {
    pub fn name(&self) -> &str {
        &self.account.username
    }

    pub fn role(&self) -> Role {
        self.account.role
    }

    /// Refuses a form whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<()> {
        if sent.is_some_and(|s| same_token(s, &self.csrf)) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }

    /// Refuses unless the role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&self.account.role) {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!(
                "{}: {}",
                self.lang
                    .t("your role may not do this", "您的角色无权执行此操作"),
                self.account.role
            )))
        }
    }
}

/// No session: where the request goes instead.
pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        Redirect::to(&self.0).into_response()
    }
}

/// Percent-encodes everything but unreserved characters (for query values and `next`).
pub fn pct(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// A local path to return to: must start with one `/` (never `//host` or a scheme), else `/cases`.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/cases".to_string(),
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::of(&parts.headers);
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let login = || {
            let next = if parts.method == axum::http::Method::GET {
                format!("/login?next={}", pct(&here))
            } else {
                "/login".to_string()
            };
            LoginRedirect(next).into_response()
        };
        let now = now_us();
        match &state.config().auth {
            AuthMode::Proxy { header } => {
                let Some(name) = parts.headers.get(header).and_then(|v| v.to_str().ok()) else {
                    return Err(login());
                };
                let account = state
                    .review()
                    .account(name.trim())
                    .await
                    .map_err(|e| WebError::from(e).into_response())?;
                match account {
                    Some(a) if !a.disabled => Ok(Viewer {
                        csrf: hex(&Sha256::digest(
                            [state.secret().as_bytes(), a.username.as_bytes()].concat(),
                        )),
                        account: a,
                        lang,
                        here,
                    }),
                    _ => Err(WebError::Forbidden(format!(
                        "the single sign-on user `{}` has no enabled creditguard account",
                        name.trim()
                    ))
                    .into_response()),
                }
            }
            AuthMode::Password => {
                let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
                    return Err(login());
                };
                let session = state
                    .review()
                    .session(&token_hash(&token), now)
                    .await
                    .map_err(|e| WebError::from(e).into_response())?;
                match session {
                    Some(s) => Ok(Viewer {
                        account: s.account,
                        csrf: s.csrf,
                        lang,
                        here,
                    }),
                    None => Err(login()),
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

/// `GET /login`: the form, with a fresh double-submit token.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    let lang = Lang::of(&headers);
    let token = random_token()?;
    let next = local_path(q.next.as_deref());
    let message = match q.error.as_deref() {
        Some("invalid") => Some(lang.t("Wrong username or password.", "用户名或密码错误。")),
        Some("locked") => Some(lang.t(
            "Too many failed attempts: this account or address is locked for a while. Try again later.",
            "失败次数过多：该账户或地址已被暂时锁定，请稍后再试。",
        )),
        Some("stale") => Some(lang.t(
            "The login form expired; please try again.",
            "登录表单已过期，请重试。",
        )),
        _ => None,
    };
    let mut resp = crate::pages::page(crate::pages::login(lang, &token, &next, message));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, &token, "/login", 1800),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

/// `POST /login`: checks the lockout, then the password; on success a new session.
pub async fn login_submit(
    State(state): State<AppState>,
    parts: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let next = local_path(form.next.as_deref());
    let back = |error: &str| {
        Redirect::to(&format!("/login?error={error}&next={}", pct(&next))).into_response()
    };
    let expected = cookie(&headers, LOGIN_COOKIE);
    if !matches!((&expected, &form.csrf), (Some(e), Some(s)) if same_token(e, s)) {
        return Ok(back("stale"));
    }
    let username = form.username.unwrap_or_default().trim().to_string();
    let password = form.password.unwrap_or_default();
    let address = client_address(&parts);
    let now = now_us();
    let review = state.review();
    let lockout = &state.config().lockout;
    let since = now - lockout.window.as_micros() as i64;
    let (by_user, by_addr) = review.login_failures(&username, &address, since).await?;
    if by_user >= lockout.account_failures || by_addr >= lockout.address_failures {
        state.metrics().login("locked");
        tracing::warn!(
            username,
            address,
            by_user,
            by_addr,
            "Login refused: locked out."
        );
        return Ok(back("locked"));
    }
    let account = if username.is_empty() {
        None
    } else {
        review.account(&username).await?
    };
    let hash = account
        .as_ref()
        .filter(|a| !a.disabled)
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let pw = password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .map_err(|e| WebError::Internal(format!("verifying a password: {e}")))?;
    let account = match account {
        Some(a) if ok && !a.disabled => a,
        _ => {
            review
                .record_login_failure(&username, &address, now)
                .await?;
            state.metrics().login("failure");
            tracing::info!(username, address, "Login failed.");
            return Ok(back("invalid"));
        }
    };
    review.clear_login_failures(&account.username).await?;
    let token = random_token()?;
    let csrf = random_token()?;
    let ttl = state.config().session_ttl.as_micros() as i64;
    review
        .create_session(
            &token_hash(&token),
            &account.username,
            &csrf,
            &address,
            now,
            now + ttl,
        )
        .await?;
    review
        .record_access(
            &account.username,
            "login",
            None,
            serde_json::json!({"address": address}),
            now,
        )
        .await?;
    state.metrics().login("success");
    let mut resp = Redirect::to(&next).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, "/", ttl / 1_000_000),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, "", "/login", 0),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    viewer.check_csrf(form.csrf.as_deref())?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state
            .review()
            .end_session(&token_hash(&token), now_us())
            .await?;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/", 0),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

/// `GET /lang?to=zh&back=/cases`: the language toggle (a cookie; no learner data involved).
pub async fn set_lang(State(state): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let lang = q.to.as_deref().and_then(Lang::parse).unwrap_or(Lang::En);
    let code = match lang {
        Lang::En => "en",
        Lang::Zh => "zh",
    };
    let mut resp = Redirect::to(&local_path(q.back.as_deref())).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, crate::i18n::COOKIE, code, "/", 365 * 86_400),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/cases/k1")), "/cases/k1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "cases"] {
            assert_eq!(local_path(Some(bad)), "/cases", "{bad}");
        }
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("", ""));
    }
}
