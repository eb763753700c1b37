//! `creditguard import`: converts public learning-platform logs (EdNet KT4 / KT1, Open edX
//! tracking logs, UCI EPM activity records) to telemetry-v1 NDJSON and a synthesized course catalog (see the
//! `creditguard-import` crate for each mapping). Prints what was written and, per reason, every
//! source record that could not be mapped.

use crate::cli::{FormatArg, ImportArgs};
use anyhow::Context;
use creditguard_import::{import, write_catalog, write_ndjson, Format, Options};

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
