//! Named crash points for crash tests: `CREDITGUARD_FAULT=<point>` makes the process abort
//! (SIGABRT, no cleanup, like a power cut) the N-th time it reaches that point
//! (`CREDITGUARD_FAULT_AFTER=N`, default 1). These are real code paths of the writer, not mocks:
//!
//! - `mid_file`: after the first bytes of an event file reached its temporary file, before the
//!   file is complete, fsynced and renamed.
//! - `between_files`: after the first of a range's per-day files is committed, before the others
//!   (a range whose events span several days writes one file per day).
//! - `after_file_before_commit`: after every file of a range is durable and its dead letters are
//!   confirmed, before its offsets are stored and committed.
//!
//! Never set them in production.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Where to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    MidFile,
    BetweenFiles,
    AfterFileBeforeCommit,
}

impl FaultPoint {
    const ALL: [FaultPoint; 3] = [
        FaultPoint::MidFile,
        FaultPoint::BetweenFiles,
        FaultPoint::AfterFileBeforeCommit,
    ];

    /// The name used in `CREDITGUARD_FAULT`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultPoint::MidFile => "mid_file",
            FaultPoint::BetweenFiles => "between_files",
            FaultPoint::AfterFileBeforeCommit => "after_file_before_commit",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The armed crash point, if any.
#[derive(Debug, Default)]
pub struct Fault {
    point: Option<FaultPoint>,
    after: u64,
    seen: AtomicU64,
}

impl Fault {
    /// No crash point.
    pub fn none() -> Self {
        Fault::default()
    }

    /// Crash the `after`-th time `point` is reached.
    pub fn at(point: FaultPoint, after: u64) -> Self {
        Fault {
            point: Some(point),
            after: after.max(1),
            seen: AtomicU64::new(0),
        }
    }

    /// From `CREDITGUARD_FAULT` / `CREDITGUARD_FAULT_AFTER`; an unknown name is an error.
    pub fn from_env() -> Result<Self> {
        let Ok(name) = std::env::var("CREDITGUARD_FAULT") else {
            return Ok(Fault::none());
        };
        if name.is_empty() {
            return Ok(Fault::none());
        }
        let point = FaultPoint::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<_> = FaultPoint::ALL.iter().map(|p| p.as_str()).collect();
                Error::Config(format!(
                    "CREDITGUARD_FAULT=`{name}`: unknown crash point (known: {})",
                    known.join(", ")
                ))
            })?;
        let after = match std::env::var("CREDITGUARD_FAULT_AFTER") {
            Ok(n) => n.parse().map_err(|_| {
                Error::Config(format!("CREDITGUARD_FAULT_AFTER=`{n}`: not a number"))
            })?,
            Err(_) => 1,
        };
        tracing::warn!(point = %point, after, "Crash point armed (CREDITGUARD_FAULT): this process will abort.");
        Ok(Fault::at(point, after))
    }

    /// Whether `point` is armed (cheap check before building anything for it).
    pub fn armed(&self, point: FaultPoint) -> bool {
        self.point == Some(point)
    }

    /// Aborts the process if this is the armed point's N-th visit.
    pub fn hit(&self, point: FaultPoint) {
        if self.point == Some(point) && self.seen.fetch_add(1, Ordering::SeqCst) + 1 >= self.after {
            eprintln!("creditguard: CREDITGUARD_FAULT={point}: aborting on purpose");
            std::process::abort();
        }
    }
}

/// Passes writes through and hits [`FaultPoint::MidFile`] once some bytes are written, so the
/// crash leaves a real partial temporary file behind.
pub(crate) struct FaultWriter<'a, W> {
    pub inner: W,
    pub fault: &'a Fault,
    pub written: u64,
}

impl<W: Write> Write for FaultWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        // The first write is the 4-byte magic; crash on a later one, inside the data.
        if self.written > 4 {
            self.inner.flush()?;
            self.fault.hit(FaultPoint::MidFile);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
