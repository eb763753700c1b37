//! Re-identification where a person is entitled to it: the roster's real ids mapped to the lake's
//! pseudonyms with the key, in memory (never written to the lake or the review database).
//!
//! - `[results] identify = true`: the results topic and `--emit ndjson` carry `employee_id`
//!   beside the pseudonym ([`StreamRecord`]), for the platform that books credits.
//! - `creditguard serve`: the review app shows reviewers the employees of their own scope.

use std::path::Path;

use creditguard_contract::privacy::{Identities, Identity};
use creditguard_contract::{ResultRecord, StreamRecord};

use crate::config::{ConfigError, Pipeline, Switch};

/// The employees of a roster CSV: its `user_id` column and, when it has one, `name`.
pub fn roster_people(path: &Path) -> Result<Vec<Identity>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("key `roster.path`: cannot read `{}`: {e}", path.display()))?;
    let rows = creditguard_lake::catalog::csv_records(&text)
        .map_err(|e| format!("key `roster.path`: `{}`: {e}", path.display()))?;
    let mut rows = rows.into_iter();
    let header = rows.next().map(|(_, h)| h).unwrap_or_default();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let Some(id) = column("user_id") else {
        return Err(format!(
            "key `roster.path`: `{}` has no `user_id` column",
            path.display()
        ));
    };
    let name = column("name");
    let field = |r: &[String], i: usize| r.get(i).map(|v| v.trim().to_string());
    Ok(rows
        .filter_map(|(_, r)| {
            let employee_id = field(&r, id).filter(|v| !v.is_empty())?;
            let name = name.and_then(|i| field(&r, i)).filter(|v| !v.is_empty());
            Some(Identity { employee_id, name })
        })
        .collect())
}

impl Pipeline {
    /// Pseudonym → employee from `[roster]` and the `[privacy]` key; `None` without a roster.
    pub fn identities(&self) -> Result<Option<Identities>, String> {
        let Some(roster) = &self.roster else {
            return Ok(None);
        };
        if let Some(path) = &self.privacy.key_file {
            // `resolve` stands in a placeholder for a key `create_key` will make: no use here.
            if self.privacy.pseudonymise == Switch::On && !path.exists() {
                return Err(format!(
                    "key `privacy.key_file`: `{}` does not exist; re-identification needs the key the lake was pseudonymised with",
                    path.display()
                ));
            }
        }
        let p = self.privacy.resolve(false)?;
        let people = roster_people(&roster.path)?;
        Ok(Some(Identities::new(p.as_ref(), people)))
    }

    /// The identities the results stream carries: `Some` only with `[results] identify = true`
    /// (checked at load to have a roster and the key).
    pub fn stream_identities(&self) -> anyhow::Result<Option<Identities>> {
        if !self.results.identify {
            return Ok(None);
        }
        let refuse = |problem: String| ConfigError {
            file: self.file.clone(),
            problems: vec![problem],
        };
        match self.identities().map_err(refuse)? {
            Some(ids) => Ok(Some(ids)),
            None => Err(refuse("key `results.identify`: needs `[roster]`".into()).into()),
        }
    }
}

/// The stream form of `records`: with `identities`, each carries its learner's `employee_id`.
/// Learners the roster lacks get none and are reported (a warning naming how many and the first
/// pseudonyms). Returns the records and the number of distinct learners left unidentified.
pub fn stream_records(
    records: Vec<ResultRecord>,
    identities: Option<&Identities>,
) -> (Vec<StreamRecord>, usize) {
    let Some(ids) = identities else {
        return (records.into_iter().map(StreamRecord::from).collect(), 0);
    };
    let mut missing = std::collections::BTreeSet::new();
    let out = records
        .into_iter()
        .map(|record| {
            let employee_id = ids.get(record.user_id()).map(|i| i.employee_id.clone());
            if employee_id.is_none() {
                missing.insert(record.user_id().to_string());
            }
            StreamRecord {
                record,
                employee_id,
            }
        })
        .collect();
    if !missing.is_empty() {
        let first: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        tracing::warn!(
            learners = missing.len(),
            first = ?first,
            "results.identify: learners missing from the roster; their records carry no employee_id."
        );
    }
    (out, missing.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_gives_ids_and_names_when_it_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let with_names = dir.path().join("r1.csv");
        std::fs::write(
            &with_names,
            "user_id,org_path,name\nE1,HQ/Sales,\"Wang, Fang\"\nE2,HQ/Sales,\n,HQ/Sales,Nobody\n",
        )
        .unwrap();
        let people = roster_people(&with_names).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].name.as_deref(), Some("Wang, Fang"));
        assert_eq!(
            (people[1].employee_id.as_str(), people[1].name.as_deref()),
            ("E2", None)
        );
        let no_id = dir.path().join("r2.csv");
        std::fs::write(&no_id, "id,org_path\nE1,HQ\n").unwrap();
        let err = roster_people(&no_id).unwrap_err();
        assert!(
            err.contains("key `roster.path`") && err.contains("`user_id`"),
            "{err}"
        );
    }
}
