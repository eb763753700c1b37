//! `creditguard serve` (the review web app, `creditguard-web`) and `creditguard users` (its
//! accounts). Both work on a pipeline's review database; `serve` also reads its lake and course
//! catalog for flags' evidence, credit records, progress and timelines.

use std::io::{BufRead as _, IsTerminal as _};
use std::time::Duration;

use anyhow::Context as _;
use creditguard_review::{now_us, Role};
use creditguard_score::Catalog;
use creditguard_web::{AuthMode, Config, LakeView};

use crate::cli::{ServeArgs, UsersArgs, UsersCommand};
use crate::config::{Overrides, Pipeline};
use crate::review::{ReviewUsageError, Store};

/// Reads one password line from standard input (prompting on a terminal).
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password (input is shown; pipe it in to hide it): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.chars().count() < 8 {
        return Err(ReviewUsageError(
            "the password (one line on standard input) must have at least 8 characters".into(),
        )
        .into());
    }
    Ok(pw)
}

fn usage(e: creditguard_review::Error) -> anyhow::Error {
    if e.is_usage() {
        ReviewUsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

fn open(target: &crate::cli::Target) -> anyhow::Result<(Pipeline, Store)> {
    let overrides = Overrides {
        lake: target.lake.clone(),
        ..Overrides::default()
    };
    let pipeline = Pipeline::load(&target.pipeline, &overrides)?;
    let store = Store::open(&pipeline)?;
    Ok((pipeline, store))
}

/// Runs `creditguard users …`.
pub fn execute_users(args: UsersArgs) -> anyhow::Result<()> {
    match args.command {
        UsersCommand::Add {
            target,
            name,
            role,
            scope,
            actor,
        } => {
            let role = Role::parse(&role).expect("clap checked the role");
            let (_, store) = open(&target)?;
            let hash = creditguard_web::auth::hash_password(&read_password()?)
                .map_err(|e| ReviewUsageError(e.to_string()))?;
            let a = store
                .run(
                    store
                        .review
                        .add_account(&name, role, &scope, &hash, &actor, now_us()),
                )
                .map_err(usage)?;
            println!(
                "added {} ({}, scopes: {})",
                a.username,
                a.role,
                scope_text(&a.scope.0)
            );
        }
        UsersCommand::Disable {
            target,
            name,
            actor,
        } => {
            let (_, store) = open(&target)?;
            store
                .run(store.review.disable_account(&name, &actor, now_us()))
                .map_err(usage)?;
            println!("disabled {name}");
        }
        UsersCommand::SetPassword {
            target,
            name,
            actor,
        } => {
            let (_, store) = open(&target)?;
            let hash = creditguard_web::auth::hash_password(&read_password()?)
                .map_err(|e| ReviewUsageError(e.to_string()))?;
            store
                .run(store.review.set_password(&name, &hash, &actor, now_us()))
                .map_err(usage)?;
            println!("password of {name} set; its sessions ended");
        }
        UsersCommand::List { target } => {
            let (_, store) = open(&target)?;
            let accounts = store.run(store.review.accounts())?;
            for a in accounts {
                println!(
                    "{:<24} {:<9} {:<9} {}",
                    a.username,
                    a.role,
                    if a.disabled { "disabled" } else { "enabled" },
                    scope_text(&a.scope.0)
                );
            }
        }
    }
    Ok(())
}

fn scope_text(s: &[String]) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.join(", ")
    }
}

/// Runs `creditguard serve` until SIGINT or SIGTERM, then finishes the requests in flight.
pub fn execute_serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        lake: args.lake.clone(),
        ..Overrides::default()
    };
    let pipeline = Pipeline::load(&args.pipeline, &overrides)?;
    let s = pipeline.review.clone();
    let listen = args.listen.clone().unwrap_or_else(|| s.listen.clone());
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        ReviewUsageError(format!(
            "--listen `{listen}`: expected an address such as 127.0.0.1:8080"
        ))
    })?;
    let url = crate::review::database_url(&pipeline)?;
    let root = pipeline
        .lake
        .strip_prefix("file://")
        .unwrap_or(&pipeline.lake);
    let lake = creditguard_lake::Lake::open(root)
        .with_context(|| format!("opening the lake at {root}"))?;
    let catalog = match &pipeline.catalog {
        Some(p) => {
            Catalog::load(p).with_context(|| format!("loading the catalog {}", p.display()))?
        }
        None => Catalog::default(),
    };
    let auth = match s.auth.as_str() {
        "proxy" => AuthMode::Proxy {
            header: axum_header(&s.proxy_header)?,
        },
        _ => AuthMode::Password,
    };
    // Reviewers see the employees of their scope: the roster's real ids through the key, in
    // memory only.
    let identities = pipeline
        .identities()
        .map_err(|e| crate::config::ConfigError {
            file: pipeline.file.clone(),
            problems: vec![e],
        })?;
    if let Some(ids) = &identities {
        tracing::info!(
            employees = ids.len(),
            "Re-identifying learners for reviewers inside their scopes (from [roster])."
        );
    }
    let config = Config {
        lake: Some(LakeView::new(lake, catalog)),
        auth,
        session_ttl: Duration::from_secs(s.session_hours.max(1) as u64 * 3600),
        secure_cookies: s.secure_cookies,
        lockout: creditguard_web::Lockout::default(),
        identities: identities.map(std::sync::Arc::new),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the web server's runtime")?;
    rt.block_on(async move {
        let review = creditguard_review::Review::open(&url).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, database = review.name(), "Serving the review web app.");
        eprintln!(
            "creditguard: review web app on http://{bound}/ (database {})",
            review.name()
        );
        let app = creditguard_web::router(review, config);
        creditguard_web::serve(listener, app, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

fn axum_header(name: &str) -> anyhow::Result<axum::http::HeaderName> {
    let lower = crate::review::axum_header_ok(name).ok_or_else(|| {
        ReviewUsageError(format!(
            "[review] proxy_header `{name}` is not a header name"
        ))
    })?;
    Ok(axum::http::HeaderName::from_bytes(lower.as_bytes())?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("Shutting down: finishing the requests in flight.");
}
