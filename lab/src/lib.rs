//! R1 Lab: the DeepSeek-R1 recipe at toy scale, every run a content-addressed experiment.
//!
//! Flow goes one way: a [`spec`] resolves to an [`identity`], the [`runner`] executes its
//! [`stages`], and results land in the [`store`]. The generated [`world`] supplies the data; the
//! [`tokenizer`], [`sampling`] and [`evaluation`] are pure functions any model can use.

pub mod alloc;
pub mod causal_lm;
pub mod curves;
pub mod device;
pub mod evaluation;
pub mod facts;
pub mod faults;
pub mod findings;
pub mod generate;
pub mod grpo;
pub mod habits;
pub mod hf;
pub mod highlight;
pub mod identity;
pub mod language;
pub mod model;
pub mod parallel;
pub mod report;
pub mod response;
pub mod results_table;
pub mod rewards;
pub mod rng;
pub mod runner;
pub mod sampling;
pub mod slurm;
pub mod spec;
pub mod stages;
pub mod store;
pub mod table;
pub mod tokenizer;
pub mod trace;
pub mod train;
pub mod world;
