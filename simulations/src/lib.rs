//! tiersim: device and workload models for capacity planning (lands with its issue).
