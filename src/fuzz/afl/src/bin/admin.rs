//! AFL++ target `admin`: see `borderlane_fuzz::admin`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::admin(data));
}
