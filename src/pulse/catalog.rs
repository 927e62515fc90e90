//! The programs currently in force, as loaded from `config/programs/`. Swapped whole on
//! reload (SIGHUP), so a reader never sees half a configuration.

use std::sync::{Arc, RwLock};

use crate::config::program::Program;

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

    pub fn replace(&self, programs: Vec<Program>) {
        let programs = programs.into_iter().map(Arc::new).collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(programs);
    }

    pub fn program(&self, id: &str) -> Option<Arc<Program>> {
        self.programs().iter().find(|p| p.id == id).cloned()
    }
}
