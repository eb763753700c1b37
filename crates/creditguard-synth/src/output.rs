//! Output files: plain or zstd-compressed (by the `.zst` extension), or stdout, written to a
//! temporary name and renamed when complete so a reader never sees half a file.

use std::fs::File;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

enum Sink {
    Stdout(BufWriter<Stdout>),
    Plain(BufWriter<File>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

/// A telemetry destination. Call [`Output::finish`]: dropping it leaves only a temporary file.
pub struct Output {
    sink: Sink,
    /// (temporary, final) paths of a file output.
    paths: Option<(PathBuf, PathBuf)>,
}

fn io_err(path: &Path, e: io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

impl Output {
    /// `-` is stdout (never compressed); a path ending in `.zst` is compressed at `zstd_level`.
    pub fn create(path: &Path, zstd_level: i32) -> Result<Output> {
        if path.as_os_str() == "-" {
            return Ok(Output {
                sink: Sink::Stdout(BufWriter::with_capacity(1 << 20, io::stdout())),
                paths: None,
            });
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let buf = BufWriter::with_capacity(1 << 20, file);
        let sink = if path.extension().is_some_and(|e| e == "zst") {
            let mut enc = zstd::Encoder::new(buf, zstd_level).map_err(|e| io_err(path, e))?;
            // Long-distance matching finds the repeats of a learner's ids minutes of data apart.
            enc.long_distance_matching(true)
                .map_err(|e| io_err(path, e))?;
            enc.window_log(27).map_err(|e| io_err(path, e))?;
            Sink::Zstd(enc)
        } else {
            Sink::Plain(buf)
        };
        Ok(Output {
            sink,
            paths: Some((tmp, path.to_path_buf())),
        })
    }

    /// Flushes, closes and renames the file into place.
    pub fn finish(self) -> Result<()> {
        let file = match self.sink {
            Sink::Stdout(mut w) => {
                w.flush()?;
                return Ok(());
            }
            Sink::Plain(w) => w.into_inner().map_err(|e| Error::Write(e.into_error()))?,
            Sink::Zstd(enc) => enc
                .finish()?
                .into_inner()
                .map_err(|e| Error::Write(e.into_error()))?,
        };
        file.sync_all()?;
        if let Some((tmp, path)) = self.paths {
            std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Stdout(w) => w.write(buf),
            Sink::Plain(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::Plain(w) => w.write_all(buf),
            Sink::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(w) => w.flush(),
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// Reads a whole NDJSON file, decompressing `.zst`.
pub fn read_ndjson(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    if path.extension().is_some_and(|e| e == "zst") {
        zstd::decode_all(&bytes[..]).map_err(|e| io_err(path, e))
    } else {
        Ok(bytes)
    }
}
