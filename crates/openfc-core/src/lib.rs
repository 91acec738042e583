//! The domain of openfc: FC 2.0 resources (services, functions, code packages), their validation rules and
//! defaults, the use cases that act on them, and the ports (`MetaStore`, `CodeStore`, `Clock`) that backends
//! implement, and the `Invoker` port through which every entry point runs functions. It also holds the wire vocabulary that does no I/O: the error-code table and lenient JSON decoding.
//! Nothing here knows about HTTP frameworks, SQL drivers or process APIs.

#![forbid(unsafe_code)]

pub mod asyncq;
pub mod bindings;
pub mod cache;
pub mod cluster;
pub mod code;
pub mod configs;
pub mod dockey;
pub mod domains;
pub mod error;
pub mod function;
pub mod images;
pub mod instances;
pub mod invocation;
pub mod invoke;
pub mod layers;
pub mod names;
pub mod page;
pub mod policy;
pub mod ports;
pub mod service;
pub mod services;
pub mod stateful;
pub mod tags;
pub mod timers;
pub mod trigger_config;
pub mod triggers;
pub mod usecase;
pub mod versions;
pub mod wire;

pub use error::CoreError;
