//! `simulate validate`: runs a workload, scaled down, against a real temporary store and compares the
//! models' predictions with the engine's counters (lands once `tierkv::Db` is on the branch).
