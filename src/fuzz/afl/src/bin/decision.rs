//! AFL++ target `decision`: see `borderlane_fuzz::decision`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::decision(data));
}
