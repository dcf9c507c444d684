//! Render: `results.json` → the decision report. The last step of the pipeline, and the
//! only one that needs no running system: it reads the file and nothing else.
//!
//! [`usl`] fits the Universal Scalability Law to a system's throughput over instances.

pub mod usl;
