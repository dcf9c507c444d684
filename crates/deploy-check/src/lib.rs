//! The container deployment (docker-compose.yml, deploy/, the Dockerfile, .dockerignore and
//! the README's "Beyond one machine" section) checked against the binaries it runs, without
//! a Docker engine: every command line is handed to the binary it names (`<bin> [sub]
//! ARGS... --help` makes clap parse ARGS, so an unknown flag or a bad value fails as it
//! would in the container), and the ports, hosts, volumes, health checks, HAProxy configs
//! and the image that tie the services together must agree.
//!
//! Start reading at [`checks::problems`]: it takes the files as [`Files`] and the binaries
//! as [`Binaries`] ([`BinDir`] runs the real ones) and returns what disagrees, one line a
//! problem naming the file. Below it are small parsers, each tested beside itself:
//! [`shell`] (word splitting), [`compose`] (the YAML model), [`dockerfile`], [`haproxy`],
//! and [`command`] (which of our binaries a command line runs). What needs a built server
//! (key generation, a server started through the image's entry point) is run by
//! crates/harness/tests/compose.rs, which holds the real files to all of this.
//!
//! The Kubernetes manifests (deploy/k8s) are checked the same way after `kubectl
//! kustomize` renders them: [`kustomize`] renders and reads the kustomizations,
//! [`manifests`] reads what they render, and [`checks::k8s`] holds each overlay's server
//! containers to their binaries and to the overlay's Services, probes, stores and keys.
//! tests/k8s.rs runs them on the real files with the real kubectl and binaries.

pub mod addr;
pub mod binaries;
pub mod checks;
pub mod command;
pub mod compose;
pub mod dockerfile;
pub mod files;
pub mod haproxy;
pub mod kustomize;
pub mod manifests;
pub mod shell;

pub use binaries::{BinDir, Binaries};
pub use files::Files;
