//! Benchmarks for Strongroom: see `benches/` and `report.py`.
