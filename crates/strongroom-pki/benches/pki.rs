//! Benchmarks of strongroom-pki (filled in below).

fn main() {}
