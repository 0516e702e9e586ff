//! Intel TDX attestation: a quote verified with Intel's collateral, then validated against a
//! policy, then its event log replayed. Crypto checks stay apart from policy.
//!
//! - [`quote`]: TDX (v4, v5) and SGX (v3) quotes parsed into typed borrowed views.
//! - [`decode`]: every field of a quote, for `verifier decode`.
//! - [`chain`]: certificate chains verified link by link to exactly one trusted root.
//! - [`dcap`]: the checks that need no collateral: the PCK chain to the pinned Intel root, the
//!   QE report signature and binding, the quote signature.
//! - [`collateral`]: TCB info, QE identity, CRLs and the TCB signing chain, as dcap-qvl's
//!   bundle or as the files Intel's PCS serves, exact signed bytes kept.
//! - [`pck`]: the SGX extensions of the PCK certificate (FMSPC, PCE-ID, TCB components).
//! - [`tcb`]: TCB evaluation following Intel's QVL.
//! - [`verify`]: the whole DCAP flow at a given time with a given root, step by step.
//! - [`policy`]: what a verified quote must also show (status, debug, MRTD, RTMRs, …).
//! - [`eventlog`]: CCEL and dstack event logs, replayed into RTMR0–3.

pub mod chain;
pub mod collateral;
pub mod dcap;
pub mod decode;
pub mod eventlog;
pub mod judge;
pub mod pck;
pub mod pcs;
pub mod policy;
pub mod quote;
pub mod tcb;
pub mod verify;
