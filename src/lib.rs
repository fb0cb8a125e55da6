//! zerolabel: a fully functional image classifier from unlabelled images and class names.
//!
//! Data flows one way (Sam, Agarwalla, Babu, AAAI-22, and beyond):
//! images ([`data`]) -> features ([`backbone`], stage I; [`stages`]) -> clusters
//! ([`clustering`], stage II: one [`clustering::Clusterer`] per method) -> named classifier
//! ([`naming`]: one [`naming::Namer`] per method - the paper's stage III in [`matching`], or
//! geometry - against the label [`prior`] built by a [`prior::encoder::TextEncoder`], with
//! [`ot`] underneath) -> predictions -> evaluation ([`eval`] and [`diagnostics`], the only
//! readers of labels) -> report ([`report`], [`plot`]).
//!
//! [`orchestrator`] runs stages II-III over seeds for `run`, `match` and [`ablation`]; [`run`]
//! chains every stage with caching in a folder whose paths [`layout`] owns; [`predict`] applies
//! a finished run; [`sheets`] shows a finished run's clusters for a person to name
//! ([`naming::person`]); [`config`] checks settings once; [`cli`] is the program.
pub mod ablation;
pub mod assignment;
pub mod backbone;
pub mod cli;
pub mod clustering;
pub mod config;
pub mod data;
pub mod device;
pub mod diagnostics;
pub mod error;
pub mod eval;
pub mod fuzz;
pub mod io;
pub mod layout;
pub mod matching;
pub mod memory;
pub mod naming;
pub mod orchestrator;
pub mod ot;
pub mod pixel_features;
pub mod plot;
pub mod predict;
pub mod prior;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run;
pub mod sheets;
pub mod stages;

pub use error::{Error, Result};
