//! Keys derived from the server secret (`PULSELOOP_ENCRYPTION_KEY`): each use has its own
//! label, so a key for one purpose says nothing about another (the reply relay's lookup and
//! seal keys, the bot-token cipher, the OAuth `state` signature). HMAC-SHA256 of the label
//! under the secret; the secret itself is never stored.

use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

/// A 32-byte key for `label`, derived from `secret`.
pub fn derive_key(secret: &SecretString, label: &[u8]) -> [u8; 32] {
    let root = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(hmac::sign(&root, label).as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_different_keys_and_the_same_label_the_same_key() {
        let secret = SecretString::from("a server secret");
        let a = derive_key(&secret, b"one");
        assert_eq!(a, derive_key(&secret, b"one"));
        assert_ne!(a, derive_key(&secret, b"two"));
        assert_ne!(a, derive_key(&SecretString::from("another"), b"one"));
    }
}
