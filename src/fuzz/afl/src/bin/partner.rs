//! AFL++ target `partner`: see `borderlane_fuzz::partner`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::partner(data));
}
