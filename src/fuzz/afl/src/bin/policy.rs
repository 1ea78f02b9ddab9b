//! AFL++ target `policy`: see `borderlane_fuzz::policy`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::policy(data));
}
