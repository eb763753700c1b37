//! `creditguard import`: converts public learning-platform logs (EdNet KT4 / KT1, Open edX
//! tracking logs, UCI EPM activity records) to telemetry-v1 NDJSON and a synthesized course catalog (see the
//! `creditguard-import` crate for each mapping). Prints what was written and, per reason, every
//! source record that could not be mapped.

use std::path::PathBuf;

use anyhow::Context;
use creditguard_import::{import, write_catalog, write_ndjson, Format, Options};

/// The source formats on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// EdNet KT4 action logs (dataset folder with KT4/ and contents/, a folder of u*.csv, a file).
    EdnetKt4,
    /// EdNet KT1 answer logs (dataset folder with KT1_merged/ and KT1_raw/, a folder, a file).
    EdnetKt1,
    /// Open edX tracking logs (a tracking.log, a .json event, or a folder of them).
    Openedx,
    /// UCI EPM activity records (dataset folder with Processes/, a Session_<n> folder, a file).
    UciEpm,
}

/// Convert a public log format to telemetry-v1 NDJSON (and a course catalog).
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Source format.
    #[arg(value_enum)]
    pub format: FormatArg,
    /// Input file or folder.
    #[arg(long = "in", env = "CREDITGUARD_IMPORT_IN")]
    pub input: PathBuf,
    /// Output NDJSON (zstd-compressed when it ends in `.zst`).
    #[arg(long, env = "CREDITGUARD_IMPORT_OUT")]
    pub out: PathBuf,
    /// Also write the synthesized course catalog CSV here.
    #[arg(long, env = "CREDITGUARD_IMPORT_CATALOG_OUT")]
    pub catalog_out: Option<PathBuf>,
    /// EdNet-Contents folder (questions.csv, lectures.csv); default: `contents/` in the input.
    #[arg(long, env = "CREDITGUARD_IMPORT_CONTENTS")]
    pub contents: Option<PathBuf>,
}

/// Runs the import; fails (exit 1) when nothing could be mapped.
pub fn execute(args: ImportArgs) -> anyhow::Result<()> {
    let format = match args.format {
        FormatArg::EdnetKt4 => Format::EdnetKt4,
        FormatArg::EdnetKt1 => Format::EdnetKt1,
        FormatArg::Openedx => Format::OpenEdx,
        FormatArg::UciEpm => Format::UciEpm,
    };
    let opts = Options {
        input: args.input.clone(),
        contents: args.contents,
    };
    let result = import(format, &opts).with_context(|| format!("import {}", format.name()))?;
    write_ndjson(&args.out, &result.lines)?;
    if let Some(c) = &args.catalog_out {
        write_catalog(c, &result.catalog)?;
    }
    print!(
        "{} {} → {}\n{}",
        format.name(),
        args.input.display(),
        args.out.display(),
        result.stats
    );
    if let Some(c) = &args.catalog_out {
        println!(
            "catalog: {} courses → {}",
            result.catalog.len(),
            c.display()
        );
    }
    if !result.uncatalogued.is_empty() {
        println!(
            "not in the catalog (the data shows no length for them): {}",
            result.uncatalogued.join(", ")
        );
    }
    anyhow::ensure!(
        !result.lines.is_empty(),
        "no event could be mapped from {} (see the reasons above)",
        args.input.display()
    );
    Ok(())
}
