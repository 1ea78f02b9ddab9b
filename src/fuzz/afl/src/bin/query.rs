//! AFL++ target `query`: see `borderlane_fuzz::query`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::query(data));
}
