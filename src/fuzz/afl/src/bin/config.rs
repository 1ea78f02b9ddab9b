//! AFL++ target `config`: see `borderlane_fuzz::config`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::config(data));
}
