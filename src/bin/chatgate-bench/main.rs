//! chatgate-bench: the load generator (landing in the next commit).
fn main() {}
