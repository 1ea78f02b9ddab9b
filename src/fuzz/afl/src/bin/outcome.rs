//! AFL++ target `outcome`: see `borderlane_fuzz::outcome`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::outcome(data));
}
