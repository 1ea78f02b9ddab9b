//! AFL++ target `model`: see `borderlane_fuzz::model`.
fn main() {
    afl::fuzz!(|data: &[u8]| borderlane_fuzz::model(data));
}
