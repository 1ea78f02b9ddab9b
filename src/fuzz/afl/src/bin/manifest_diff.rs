//! AFL++ target `manifest_diff`: see `borderlane_fuzz::manifest_diff`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::manifest_diff(data));
}
