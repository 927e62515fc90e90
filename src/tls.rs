//! reqwest (with `rustls-no-provider`) and sqlx both use rustls; with no provider chosen the
//! first TLS client panics. Every client constructor calls this first; it is idempotent.

pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
