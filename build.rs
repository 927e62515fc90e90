// `sqlx::migrate!` embeds the migration folders at compile time; rebuild when a migration is
// added or changed (cargo does not see new files in them otherwise).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
