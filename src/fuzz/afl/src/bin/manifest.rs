//! AFL++ target `manifest`: see `borderlane_fuzz::manifest`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::manifest(data));
}
