//! The programs currently in force, as loaded from `config/programs/`. Swapped whole on
//! reload (SIGHUP), so a reader never sees half a configuration.

use crate::domain::ids::ProgramId;
use std::sync::{Arc, RwLock};

use crate::domain::program::{Anonymity, Program};

#[derive(Clone, Default)]
pub struct Catalog(Arc<RwLock<Arc<Vec<Arc<Program>>>>>);

impl Catalog {
    pub fn new(programs: Vec<Program>) -> Self {
        let catalog = Self::default();
        catalog.replace(programs);
        catalog
    }

    pub fn programs(&self) -> Arc<Vec<Arc<Program>>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps the programs. A survey whose anonymity mode gets weaker is logged: rounds
    /// already open keep the mode they opened with (it is stored on the round and the seal
    /// follows it); the new mode applies to later rounds only.
    pub fn replace(&self, programs: Vec<Program>) {
        let programs: Vec<Arc<Program>> = programs.into_iter().map(Arc::new).collect();
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        for (program, survey, before, after) in weakened(&current, &programs) {
            tracing::warn!(
                program = %program,
                survey = %survey,
                before = before.as_str(),
                after = after.as_str(),
                "anonymity weakened: rounds already open keep their promise; the new mode applies to later rounds only"
            );
        }
        *current = Arc::new(programs);
    }

    pub fn program(&self, id: &ProgramId) -> Option<Arc<Program>> {
        self.programs().iter().find(|p| p.id == *id).cloned()
    }
}

/// (program, survey, before, after) of every survey whose promise gets weaker.
fn weakened(
    before: &[Arc<Program>],
    after: &[Arc<Program>],
) -> Vec<(ProgramId, String, Anonymity, Anonymity)> {
    let mut out = Vec::new();
    for new in after {
        let Some(old) = before.iter().find(|p| p.id == new.id) else {
            continue;
        };
        for s in &new.surveys {
            if let Some(o) = old.survey(&s.id) {
                if s.anonymity.is_weaker_than(o.anonymity) {
                    out.push((new.id.clone(), s.id.clone(), o.anonymity, s.anonymity));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::program::parse_program;
    use std::path::Path;

    fn program(mode: &str) -> Arc<Program> {
        let text = format!(
            "id = \"p\"\nname = \"P\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n\
             [[members]]\nslack_id = \"U0A\"\nrole = \"participant\"\n\
             [[surveys]]\nid = \"weekly\"\ncadence = \"0 10 * * MON\"\nanonymity = \"{mode}\"\n\
             [[surveys.questions]]\nkey = \"v\"\nkind = \"scale\"\nprompt = \"How?\"\n"
        );
        Arc::new(parse_program(Path::new("p.toml"), &text).expect("valid program"))
    }

    #[test]
    fn a_weaker_mode_is_reported_and_a_stronger_one_is_not() {
        let anonymous = [program("anonymous")];
        let attributed = [program("attributed")];
        let found = weakened(&anonymous, &attributed);
        assert_eq!(
            found,
            vec![(
                ProgramId::from("p"),
                "weekly".to_string(),
                Anonymity::Anonymous,
                Anonymity::Attributed
            )]
        );
        assert!(weakened(&attributed, &anonymous).is_empty());
        assert!(weakened(&anonymous, &anonymous).is_empty());
    }
}
